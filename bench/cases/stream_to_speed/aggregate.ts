// Aggregation throughput of stream_to_speed: ViewAggregator.add (the speed layer's work per event)
// beside a hand-written JavaScript Map window loop computing the same four measures.
import { loadPipeline } from "../../../src/config/index.js";
import { ViewAggregator, compileViews, type ViewNode } from "../../../src/views/index.js";
import { flightEvent } from "../../flights.js";
import { VIEW, createViewProject } from "./project.js";

/** One side's timings (best and all runs), in seconds. */
export interface AggregateRuns {
  readonly events: number;
  readonly buckets: number;
  /** The add loop alone, every run. */
  readonly addSeconds: number[];
  /** Finalizing every bucket (rows()) after the loop, every run. */
  readonly finalizeSeconds: number[];
}

/** The view's compiled node, from a throwaway project. */
export function departuresNode(): ViewNode {
  const project = createViewProject();
  try {
    const node = compileViews(loadPipeline(project.dir)).get(VIEW);
    if (!node) throw new Error(`no view ${VIEW}`);
    return node;
  } finally {
    project.cleanup();
  }
}

/** N flights-like records as the speed layer holds them (parsed JSON) and their event times, over one day. */
export function makeEvents(n: number): { records: Record<string, unknown>[]; times: Float64Array } {
  const base = Date.UTC(2001, 0, 15);
  const records: Record<string, unknown>[] = new Array(n);
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = base + Math.floor((i * 86_400_000) / n);
    // Through JSON, as SpeedView gets them (JSON.parse of the stored record).
    records[i] = JSON.parse(
      JSON.stringify(flightEvent(i, `ev${String(i).padStart(18, "0")}`, t)),
    ) as Record<string, unknown>;
    times[i] = t;
  }
  return { records, times };
}

/** Tributary: ViewAggregator.add for every event, then rows(). */
export function runAggregator(
  node: ViewNode,
  records: readonly Record<string, unknown>[],
  times: Float64Array,
): { add: number; finalize: number; buckets: number; total: number } {
  const t0 = performance.now();
  const agg = new ViewAggregator(node);
  for (let i = 0; i < records.length; i++) agg.add(records[i]!, times[i]!);
  const t1 = performance.now();
  const rows = agg.rows();
  const t2 = performance.now();
  const total = rows.reduce((s, r) => s + Number(r.values[0] ?? 0), 0);
  return { add: (t1 - t0) / 1000, finalize: (t2 - t1) / 1000, buckets: rows.length, total };
}

interface Window {
  count: number;
  delaySum: number;
  delayN: number;
  delays: number[];
  destinations: Set<unknown>;
}

/**
 * The baseline: a Map keyed by `<minute>|<origin>` holding count, sum and count of delay (avg), every
 * delay (p95: sorted at the end, nearest rank) and a Set of destinations — what one would write
 * by hand for this view, exact, with no mergeable states.
 */
export function runHandWritten(
  records: readonly Record<string, unknown>[],
  times: Float64Array,
): { add: number; finalize: number; buckets: number; total: number } {
  const t0 = performance.now();
  const windows = new Map<string, Window>();
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const minute = Math.floor(times[i]! / 60_000) * 60_000;
    const key = `${minute}|${r.origin as string}`;
    let w = windows.get(key);
    if (!w) {
      w = { count: 0, delaySum: 0, delayN: 0, delays: [], destinations: new Set() };
      windows.set(key, w);
    }
    w.count++;
    const d = r.delay;
    if (typeof d === "number") {
      w.delaySum += d;
      w.delayN++;
      w.delays.push(d);
    }
    w.destinations.add(r.destination);
  }
  const t1 = performance.now();
  const rows: [string, number, number | null, number | null, number][] = [];
  for (const [key, w] of windows) {
    w.delays.sort((x, y) => x - y);
    const p95 =
      w.delays.length === 0 ? null : w.delays[Math.max(0, Math.ceil(0.95 * w.delays.length) - 1)]!;
    rows.push([
      key,
      w.count,
      w.delayN === 0 ? null : w.delaySum / w.delayN,
      p95,
      w.destinations.size,
    ]);
  }
  rows.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const t2 = performance.now();
  const total = rows.reduce((s, r) => s + r[1], 0);
  return { add: (t1 - t0) / 1000, finalize: (t2 - t1) / 1000, buckets: rows.length, total };
}
