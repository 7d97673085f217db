// ECharts options built from query-shaped data (columns + rows): line/bar/area charts, sparklines, the view chart.
import type { EChartsCoreOption } from "echarts/core";
import { fmtNumber, isNumericType, isTimeType, looksLikeTime, toMs, toNumber } from "./format.js";
import type { Cell, Column } from "./types.js";

/** Series colours, each readable on white. */
export const PALETTE = [
  "#1f5fbf",
  "#c2410c",
  "#15803d",
  "#7e22ce",
  "#b91c1c",
  "#0e7490",
  "#4b5563",
  "#a16207",
];

const AXIS = {
  axisLine: { lineStyle: { color: "#6b7280" } },
  axisLabel: { color: "#374151", fontSize: 11 },
  splitLine: { lineStyle: { color: "#e5e7eb" } },
};

/** A cartesian chart kind. */
export type CartesianKind = "line" | "bar" | "area";

/** What {@link cartesianOption} builds from. */
export interface CartesianInput {
  columns: Column[];
  rows: Cell[][];
  /** The x column (default: the first column). */
  x: string | null;
  /** The y columns (default: every numeric column but x and series). */
  y: string[];
  /** A column whose distinct values each make a series. */
  series: string | null;
  kind: CartesianKind;
  /** The batch/speed cut, marked on a time axis. */
  cut?: string | null;
}

/** An option and how many points it draws. */
export interface BuiltChart {
  option: EChartsCoreOption;
  points: number;
}

/** True when the column is drawn on a time axis: a time type, or values that read as instants. */
export function isTimeColumn(column: Column | undefined, rows: Cell[][], index: number): boolean {
  if (column === undefined) return false;
  if (isTimeType(column.type)) return true;
  if (isNumericType(column.type)) return false;
  const sample = rows
    .slice(0, 20)
    .map((r) => r[index])
    .filter((v) => v !== null && v !== undefined);
  return sample.length > 0 && sample.every((v) => looksLikeTime(v));
}

/** The columns a chart may use as y: numeric by type, or by the values of the first rows. */
export function numericColumns(columns: Column[], rows: Cell[][]): string[] {
  return columns
    .filter((c, i) => {
      if (isNumericType(c.type)) return true;
      if (c.type !== "" && !/^(VARCHAR|JSON|UNKNOWN)/i.test(c.type)) return false;
      const sample = rows.slice(0, 20).map((r) => r[i]);
      return (
        sample.some((v) => v !== null) && sample.every((v) => v === null || toNumber(v) !== null)
      );
    })
    .map((c) => c.name);
}

function cutMarks(cutMs: number | null, end: number | null): Record<string, unknown> {
  if (cutMs === null) return {};
  const marks: Record<string, unknown> = {
    markLine: {
      silent: true,
      symbol: "none",
      lineStyle: { color: "#374151", type: "dashed", width: 1 },
      label: { formatter: "batch ⟵ | ⟶ speed", color: "#111827", fontSize: 11 },
      data: [{ xAxis: cutMs }],
    },
  };
  if (end !== null && end > cutMs) {
    marks.markArea = {
      silent: true,
      itemStyle: { color: "rgba(31, 95, 191, 0.08)" },
      data: [[{ xAxis: cutMs }, { xAxis: end }]],
    };
  }
  return marks;
}

/**
 * A line, area or bar chart: x on a time axis when it holds times, else categories; one series
 * per y column, or per y column and distinct `series` value.
 */
export function cartesianOption(input: CartesianInput): BuiltChart {
  const { columns, rows } = input;
  const xIndex = Math.max(
    0,
    columns.findIndex((c) => c.name === input.x),
  );
  const xColumn = columns[xIndex];
  const seriesIndex =
    input.series === null ? -1 : columns.findIndex((c) => c.name === input.series);
  const yNames =
    input.y.length > 0
      ? input.y
      : numericColumns(columns, rows).filter((n) => n !== xColumn?.name && n !== input.series);
  const yIndexes = yNames
    .map((name) => ({ name, index: columns.findIndex((c) => c.name === name) }))
    .filter((y) => y.index >= 0);
  const time = isTimeColumn(xColumn, rows, xIndex);

  const groups = new Map<
    string,
    { name: string; yIndex: number; points: Map<string, number | null> }
  >();
  const categories: string[] = [];
  const seenCategory = new Set<string>();
  const xKeys: Map<string, number> = new Map();
  for (const row of rows) {
    const xValue = row[xIndex];
    let key: string;
    if (time) {
      const ms = toMs(xValue ?? null);
      if (ms === null) continue;
      key = String(ms);
      xKeys.set(key, ms);
    } else {
      key = xValue === null || xValue === undefined ? "NULL" : String(xValue);
      if (!seenCategory.has(key)) {
        seenCategory.add(key);
        categories.push(key);
      }
    }
    const seriesValue = seriesIndex >= 0 ? String(row[seriesIndex] ?? "NULL") : null;
    for (const y of yIndexes) {
      const name =
        seriesValue === null
          ? y.name
          : yIndexes.length > 1
            ? `${seriesValue} · ${y.name}`
            : seriesValue;
      let group = groups.get(name);
      if (group === undefined) {
        group = { name, yIndex: y.index, points: new Map() };
        groups.set(name, group);
      }
      const value = toNumber(row[y.index]);
      const previous = group.points.get(key);
      // Several rows on one x (a dimension not charted): their values add up.
      group.points.set(
        key,
        previous !== undefined && previous !== null && value !== null ? previous + value : value,
      );
    }
  }

  let points = 0;
  const kind = input.kind;
  const many = rows.length > 200;
  const series = [...groups.values()].map((group, i) => {
    let data: (number | null)[] | [number, number | null][];
    if (time) {
      data = [...group.points.entries()]
        .map(([key, value]): [number, number | null] => [xKeys.get(key) ?? 0, value])
        .sort((a, b) => a[0] - b[0]);
    } else {
      data = categories.map((c) => group.points.get(c) ?? null);
    }
    points += data.filter((d) => (Array.isArray(d) ? d[1] !== null : d !== null)).length;
    return {
      name: group.name,
      type: kind === "bar" ? "bar" : "line",
      data,
      showSymbol: !many,
      symbolSize: 4,
      sampling: kind === "bar" ? undefined : "lttb",
      areaStyle: kind === "area" ? { opacity: 0.25 } : undefined,
      lineStyle: kind === "bar" ? undefined : { width: 1.5 },
      ...(i === 0 && time ? cutMarks(cutWithin(toMs(input.cut ?? null), xKeys), lastX(xKeys)) : {}),
    };
  });

  const option: EChartsCoreOption = {
    animation: false,
    useUTC: true,
    color: PALETTE,
    grid: { left: 8, right: 16, top: series.length > 1 ? 32 : 16, bottom: 8, containLabel: true },
    legend:
      series.length > 1 ? { type: "plain", top: 0, textStyle: { color: "#374151" } } : undefined,
    tooltip: {
      trigger: "axis",
      valueFormatter: (v: unknown) => fmtNumber(typeof v === "number" ? v : null),
    },
    xAxis: time
      ? { type: "time", ...AXIS, splitLine: { show: false } }
      : { type: "category", data: categories, ...AXIS },
    yAxis: { type: "value", scale: kind !== "bar", ...AXIS },
    series,
  };
  return { option, points };
}

/** The cut when it falls inside the drawn x range (else nothing to mark: one layer serves it all). */
function cutWithin(cut: number | null, xKeys: Map<string, number>): number | null {
  if (cut === null || xKeys.size === 0) return null;
  const xs = [...xKeys.values()];
  return cut > Math.min(...xs) && cut <= Math.max(...xs) ? cut : null;
}

function lastX(xKeys: Map<string, number>): number | null {
  let max: number | null = null;
  for (const ms of xKeys.values()) if (max === null || ms > max) max = ms;
  return max;
}

/** A tiny axis-less line of recent samples (the overview's ingest rate). */
export function sparklineOption(samples: number[]): EChartsCoreOption {
  return {
    animation: false,
    grid: { left: 2, right: 2, top: 4, bottom: 2 },
    xAxis: { type: "category", show: false, boundaryGap: false, data: samples.map((_, i) => i) },
    yAxis: { type: "value", show: false, min: 0 },
    tooltip: { show: false },
    series: [
      {
        type: "line",
        data: samples,
        showSymbol: false,
        lineStyle: { width: 1.5, color: PALETTE[0] },
        areaStyle: { color: "rgba(31, 95, 191, 0.12)" },
      },
    ],
  };
}

/** The view page's chart: one measure over time, with the batch/speed cut marked. */
export function viewOption(args: {
  points: [number, number | null][];
  measure: string;
  from: number;
  to: number;
  cut: string | null;
}): EChartsCoreOption {
  const cut = toMs(args.cut);
  let marks: Record<string, unknown> = {};
  if (cut !== null && cut > args.from && cut < args.to) {
    marks = cutMarks(cut, args.to);
  } else if (cut === null || cut <= args.from) {
    // The speed layer serves the whole range: shade it all, no cut to mark.
    const all = cutMarks(args.from, args.to);
    marks = { markArea: all.markArea };
  }
  return {
    animation: false,
    useUTC: true,
    color: PALETTE,
    grid: { left: 8, right: 24, top: 28, bottom: 8, containLabel: true },
    tooltip: {
      trigger: "axis",
      valueFormatter: (v: unknown) => fmtNumber(typeof v === "number" ? v : null),
    },
    xAxis: { type: "time", min: args.from, max: args.to, ...AXIS, splitLine: { show: false } },
    yAxis: { type: "value", ...AXIS },
    series: [
      {
        name: args.measure,
        type: "line",
        data: args.points,
        showSymbol: args.points.length < 120,
        symbolSize: 4,
        lineStyle: { width: 1.5 },
        ...marks,
      },
    ],
  };
}
