// The lineage graph: datasets and models laid out in columns by layer (streams → raw/dlq → t1 → t2 → mart).
import type { EChartsCoreOption } from "echarts/core";
import type { DatasetSummary, PartitionStatus, Plan } from "./types.js";

/** One node of the graph: a stream (`stream:<name>`) or a dataset (`<layer>.<name>`). */
export interface LineageNode {
  id: string;
  label: string;
  layer: string;
  column: number;
  row: number;
}

/** The graph: nodes placed in columns, and edges from inputs to what reads them. */
export interface Lineage {
  nodes: LineageNode[];
  edges: { source: string; target: string }[];
  columns: number;
  /** The most nodes in one column. */
  rows: number;
}

/** The order layers are listed in, and drawn in within a column. */
export const LAYER_ORDER = [
  "stream",
  "raw",
  "dlq",
  "seed",
  "t1",
  "t2",
  "mart",
  "view_state",
  "view",
];

/** The layer of a dataset name: `raw.flights` → `raw`. */
export function layerOf(name: string): string {
  const dot = name.indexOf(".");
  return dot < 0 ? "other" : name.slice(0, dot);
}

/**
 * Builds the lineage of the pipeline. Streams feed `raw.<s>` and `dlq.<s>`; each model reads its
 * plan inputs (view_state models read `raw.<s>`). With `modelsOnly`, only models and the edges
 * between them are kept (the batch page).
 */
export function buildLineage(args: {
  streams: string[];
  datasets: DatasetSummary[];
  plan: Plan | null;
  modelsOnly?: boolean;
}): Lineage {
  const { plan, modelsOnly = false } = args;
  const nodes = new Map<
    string,
    { id: string; label: string; layer: string; column: number | null }
  >();
  const edges: { source: string; target: string }[] = [];
  const seen = new Set<string>();
  const add = (id: string, layer: string, label = id): void => {
    if (!nodes.has(id)) nodes.set(id, { id, label, layer, column: null });
  };
  const edge = (source: string, target: string): void => {
    const key = `${source}→${target}`;
    if (source === target || seen.has(key)) return;
    seen.add(key);
    edges.push({ source, target });
  };
  const datasetNames = new Set(args.datasets.map((d) => d.name));
  const models = plan?.models ?? [];
  const modelIds = new Set(models.map((m) => m.id));

  if (!modelsOnly) {
    for (const s of args.streams) {
      add(`stream:${s}`, "stream", s);
      add(`raw.${s}`, "raw");
      edge(`stream:${s}`, `raw.${s}`);
      if (datasetNames.has(`dlq.${s}`)) {
        add(`dlq.${s}`, "dlq");
        edge(`stream:${s}`, `dlq.${s}`);
      }
    }
    for (const d of args.datasets) add(d.name, d.layer || layerOf(d.name));
    for (const seed of plan?.seeds ?? []) add(seed.name, "seed");
  }
  for (const m of models) {
    add(m.id, m.layer || layerOf(m.id));
    for (const input of m.inputs ?? []) {
      if (modelsOnly && !modelIds.has(input.table)) continue;
      add(input.table, layerOf(input.table));
      edge(input.table, m.id);
    }
  }

  // A lambda view (`view.<v>`, what GET /v1/views and SQL serve) merges its batch states with the
  // speed layer, which reads the stream itself.
  if (!modelsOnly)
    for (const m of models) {
      if (m.layer !== "view_state") continue;
      const view = `view.${m.name ?? m.id.slice(m.id.indexOf(".") + 1)}`;
      add(view, "view");
      edge(m.id, view);
      for (const input of m.inputs ?? [])
        if (input.table.startsWith("raw.")) edge(`stream:${input.table.slice(4)}`, view);
    }

  // Columns: streams 0, raw/dlq 1, each plan layer after that; other models one after their inputs.
  const layers = plan?.layers ?? ["t1", "t2", "mart"];
  const base = modelsOnly ? 0 : 2;
  const fixed = (layer: string): number | null => {
    if (layer === "stream") return 0;
    if (layer === "raw" || layer === "dlq") return 1;
    const i = layers.indexOf(layer);
    return i < 0 ? null : base + i;
  };
  const inputsOf = new Map<string, string[]>();
  for (const e of edges) inputsOf.set(e.target, [...(inputsOf.get(e.target) ?? []), e.source]);
  for (const node of nodes.values()) {
    // A view's state reads raw directly: it sits next to raw, not after the marts.
    if (node.layer !== "seed" && node.layer !== "view_state") node.column = fixed(node.layer);
  }
  // Plan order is dependency order, so a model's inputs have their column before it.
  for (const m of models) {
    const node = nodes.get(m.id);
    if (node === undefined || node.column !== null) continue;
    const inputs = (inputsOf.get(m.id) ?? []).map((id) => nodes.get(id)?.column ?? null);
    const known = inputs.filter((c): c is number => c !== null);
    node.column = known.length > 0 ? Math.max(...known) + 1 : base;
  }
  // Seeds sit just before their first reader.
  for (const node of nodes.values()) {
    if (node.layer !== "seed") continue;
    const readers = edges
      .filter((e) => e.source === node.id)
      .map((e) => nodes.get(e.target)?.column ?? null)
      .filter((c): c is number => c !== null);
    node.column = readers.length > 0 ? Math.max(1, Math.min(...readers) - 1) : 1;
  }
  let last = 0;
  for (const node of nodes.values()) if (node.column !== null) last = Math.max(last, node.column);
  for (const node of nodes.values()) if (node.column === null) node.column = last + 1;

  const rank = (layer: string): number => {
    const i = LAYER_ORDER.indexOf(layer);
    return i < 0 ? LAYER_ORDER.length : i;
  };
  const byColumn = new Map<number, LineageNode[]>();
  for (const node of nodes.values()) {
    const column = node.column ?? 0;
    const list = byColumn.get(column) ?? [];
    list.push({ id: node.id, label: node.label, layer: node.layer, column, row: 0 });
    byColumn.set(column, list);
  }
  const placed: LineageNode[] = [];
  let rows = 0;
  for (const list of byColumn.values()) {
    list.sort((a, b) => rank(a.layer) - rank(b.layer) || a.id.localeCompare(b.id));
    list.forEach((n, i) => {
      n.row = i;
      placed.push(n);
    });
    rows = Math.max(rows, list.length);
  }
  const columns = Math.max(0, ...placed.map((n) => n.column)) + 1;
  return { nodes: placed, edges, columns, rows };
}

/** Fill and border of a node per layer. */
const LAYER_COLORS: Record<string, [string, string]> = {
  stream: ["#e0e7ff", "#4338ca"],
  raw: ["#dbeafe", "#1d4ed8"],
  dlq: ["#fee2e2", "#b91c1c"],
  seed: ["#fef3c7", "#a16207"],
  t1: ["#dcfce7", "#15803d"],
  t2: ["#ccfbf1", "#0f766e"],
  mart: ["#ede9fe", "#6d28d9"],
  view_state: ["#cffafe", "#0e7490"],
  view: ["#fce7f3", "#be185d"],
};

/** Fill and border of a node per partition status (the batch page). */
export const STATUS_COLORS: Record<PartitionStatus, [string, string]> = {
  fresh: ["#dafbe1", "#1a7f37"],
  stale: ["#fff8c5", "#9a6700"],
  failed: ["#ffebe9", "#cf222e"],
  missing: ["#eaeef2", "#57606a"],
};

const NODE_W = 164;
const NODE_H = 30;
/** Nodes that also show a status get a second line. */
const NODE_H_STATUS = 40;
const ROW_H = 48;

/** A w × h box with 4 px rounded corners, as an ECharts `path://` symbol. */
function boxPath(w: number, h: number): string {
  const r = 4;
  return `path://M${r} 0H${w - r}A${r} ${r} 0 0 1 ${w} ${r}V${h - r}A${r} ${r} 0 0 1 ${w - r} ${h}H${r}A${r} ${r} 0 0 1 0 ${h - r}V${r}A${r} ${r} 0 0 1 ${r} 0Z`;
}

/** The height, in pixels, that shows every row of the graph. */
export function lineageHeight(lineage: Lineage): number {
  return Math.max(1, lineage.rows) * ROW_H + 8;
}

/**
 * The ECharts option drawing a lineage: `status` colours nodes by partition status and adds it to
 * their label, else nodes are coloured by layer. Nodes sit on hidden value axes (column, row), so
 * they keep their pixel size whatever the canvas width (a `view` layout would stretch them).
 */
export function lineageOption(
  lineage: Lineage,
  status?: (id: string) => PartitionStatus | null,
): EChartsCoreOption {
  const maxRows = Math.max(1, lineage.rows);
  const height = status === undefined ? NODE_H : NODE_H_STATUS;
  const perColumn = new Map<number, number>();
  for (const n of lineage.nodes) perColumn.set(n.column, (perColumn.get(n.column) ?? 0) + 1);
  const data = lineage.nodes.map((n) => {
    const s = status?.(n.id) ?? null;
    const [fill, border] =
      s !== null ? STATUS_COLORS[s] : (LAYER_COLORS[n.layer] ?? ["#f3f4f6", "#4b5563"]);
    const count = perColumn.get(n.column) ?? 1;
    return {
      name: n.id,
      id: n.id,
      // Centre each column's nodes on the tallest column.
      value: [n.column, n.row + (maxRows - count) / 2],
      itemStyle: { color: fill, borderColor: border, borderWidth: 1.2 },
      label: { formatter: s === null ? n.label : `${n.label}\n${s}` },
      layer: n.layer,
    };
  });
  const hidden = { show: false, splitLine: { show: false } };
  return {
    animation: false,
    grid: { left: 4, right: 4, top: 4, bottom: 4 },
    xAxis: { type: "value", min: -0.5, max: Math.max(1, lineage.columns) - 0.5, ...hidden },
    yAxis: { type: "value", inverse: true, min: -0.5, max: maxRows - 0.5, ...hidden },
    tooltip: {
      formatter: (p: { dataType?: string; data?: { id?: string; layer?: string } }) =>
        p.dataType === "node" ? `${p.data?.id ?? ""} (${p.data?.layer ?? ""})` : "",
    },
    series: [
      {
        type: "graph",
        layout: "none",
        coordinateSystem: "cartesian2d",
        // A path drawn at its own size: a plain "rect" symbol is scaled unevenly, thickening its sides.
        symbol: boxPath(NODE_W, height),
        symbolSize: [NODE_W, height],
        label: {
          show: true,
          color: "#111827",
          fontSize: 11,
          lineHeight: 14,
          width: NODE_W - 12,
          overflow: "truncate",
        },
        edgeSymbol: ["none", "arrow"],
        edgeSymbolSize: 7,
        lineStyle: { color: "#6b7280", width: 1.2, curveness: 0.12, opacity: 0.8 },
        emphasis: { focus: "adjacency", lineStyle: { width: 2 } },
        data,
        links: lineage.edges.map((e) => ({ source: e.source, target: e.target })),
      },
    ],
  };
}
