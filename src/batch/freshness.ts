// Which partitions of which models are fresh, stale or missing, derived from the catalog alone.
import type { CatalogStore, PartitionState, StoredFile } from "../backends/contracts/index.js";
import { WHOLE_TABLE, type BatchPlan, type CompiledModel } from "./plan.js";
import { dayOf } from "./days.js";

/** What the catalog says about the inputs of the plan at one snapshot. */
export interface CatalogView {
  readonly snapshot: number;
  /** Live files per dataset id (`layer.name`). */
  readonly files: ReadonlyMap<string, readonly StoredFile[]>;
  /** Partition states per model id, by day. */
  readonly states: ReadonlyMap<string, ReadonlyMap<string, PartitionState>>;
}

/** Reads the files of every input and the partition states of every model. */
export async function readCatalogView(
  catalog: CatalogStore,
  plan: BatchPlan,
): Promise<CatalogView> {
  const snapshot = await catalog.latestSnapshot();
  const wanted = new Set<string>();
  for (const m of plan.models) {
    wanted.add(m.id);
    for (const i of m.inputs) wanted.add(i.table);
  }
  const files = new Map<string, StoredFile[]>();
  for (const id of wanted) {
    const [layer, name] = id.split(".") as [string, string];
    const ds = await catalog.dataset({ layer, name });
    files.set(id, ds ? await catalog.files({ layer, name }, snapshot) : []);
  }
  const states = new Map<string, Map<string, PartitionState>>();
  for (const s of await catalog.partitions()) {
    let byDay = states.get(s.model);
    if (!byDay) states.set(s.model, (byDay = new Map()));
    byDay.set(s.day, s);
  }
  return { snapshot, files, states };
}

/** Days a file holds rows of: its event-time range (stream datasets) or its `day=` partition. */
export function daysOfFile(f: StoredFile, timezone: string): string[] {
  const day = f.partition.day;
  if (day !== undefined) return [day];
  if (f.minTime === null || f.maxTime === null) return [];
  const first = dayOf(f.minTime, timezone);
  const last = dayOf(f.maxTime, timezone);
  if (first === last) return [first];
  const out: string[] = [];
  for (let t = f.minTime; ; t += 3_600_000) {
    const d = dayOf(Math.min(t, f.maxTime), timezone);
    if (out[out.length - 1] !== d) out.push(d);
    if (t >= f.maxTime) break;
  }
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}

/** Newest snapshot that added a live file holding each day, per dataset. */
function addedByDay(files: readonly StoredFile[], timezone: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of files) {
    for (const d of daysOfFile(f, timezone)) out.set(d, Math.max(out.get(d) ?? 0, f.addedIn));
  }
  return out;
}

/** The judgement of one partition. */
export interface PartitionCheck {
  readonly model: string;
  readonly day: string;
  /** `missing`: inputs have data for the day but the partition was never built. */
  readonly status: "fresh" | "stale" | "failed" | "missing";
  readonly reason: string | null;
}

/**
 * Judges every partition the plan can have. A fresh partition turns stale when the model changed
 * (hash), when an input has a live file for its day added after the partition's input snapshot
 * (late data, a rebuilt upstream day, a changed seed), or when an upstream partition of the same
 * day is itself stale, failed or missing. Models are judged in dependency order, so staleness
 * propagates to every dependent.
 */
export function checkPartitions(plan: BatchPlan, view: CatalogView): PartitionCheck[] {
  const tz = plan.timezone;
  const added = new Map<string, Map<string, number>>();
  const addedOf = (id: string): Map<string, number> => {
    let m = added.get(id);
    if (!m) added.set(id, (m = addedByDay(view.files.get(id) ?? [], tz)));
    return m;
  };
  const newestOf = (id: string): number =>
    Math.max(0, ...(view.files.get(id) ?? []).map((f) => f.addedIn));
  const judged = new Map<string, Map<string, PartitionCheck>>();
  const out: PartitionCheck[] = [];
  for (const m of plan.models) {
    const byDay = new Map<string, PartitionCheck>();
    judged.set(m.id, byDay);
    const states = view.states.get(m.id) ?? new Map<string, PartitionState>();
    const days = m.spec.materialized === "full" ? [WHOLE_TABLE] : candidateDays(m, judged, addedOf);
    for (const s of states.keys()) if (!days.includes(s)) days.push(s);
    days.sort();
    for (const day of days) {
      const check = judge(m, day, states.get(day), { addedOf, newestOf, judged });
      byDay.set(day, check);
      out.push(check);
    }
  }
  return out;
}

/** Days with input data for a partitioned model: days of its stream inputs and upstream partitions. */
function candidateDays(
  m: CompiledModel,
  judged: ReadonlyMap<string, ReadonlyMap<string, PartitionCheck>>,
  addedOf: (id: string) => Map<string, number>,
): string[] {
  const days = new Set<string>();
  for (const i of m.inputs) {
    if (!i.partitioned) continue;
    if (i.kind === "stream") for (const d of addedOf(i.table).keys()) days.add(d);
    else for (const d of judged.get(i.table)?.keys() ?? []) days.add(d);
  }
  return [...days];
}

function judge(
  m: CompiledModel,
  day: string,
  state: PartitionState | undefined,
  ctx: {
    addedOf: (id: string) => Map<string, number>;
    newestOf: (id: string) => number;
    judged: ReadonlyMap<string, ReadonlyMap<string, PartitionCheck>>;
  },
): PartitionCheck {
  const verdict = (status: PartitionCheck["status"], reason: string | null): PartitionCheck => ({
    model: m.id,
    day,
    status,
    reason,
  });
  if (!state || state.builtAt === null) {
    if (state?.status === "failed") return verdict("failed", state.reason);
    return verdict("missing", "never built");
  }
  if (state.status === "failed") return verdict("failed", state.reason);
  if (state.status === "stale") return verdict("stale", state.reason);
  if (state.modelHash !== m.hash) return verdict("stale", "the model changed");
  const since = state.inputSnapshot ?? 0;
  for (const i of m.inputs) {
    const whole = day === WHOLE_TABLE || !i.partitioned;
    if (i.kind === "model") {
      const up = ctx.judged.get(i.table);
      const upDays = whole
        ? [...(up?.values() ?? [])]
        : [up?.get(day)].filter((c) => c !== undefined);
      const bad = upDays.find((c) => c.status !== "fresh");
      if (bad) return verdict("stale", `${i.table} ${bad.day} is ${bad.status}`);
    }
    const newest = whole ? ctx.newestOf(i.table) : (ctx.addedOf(i.table).get(day) ?? 0);
    if (newest > since) {
      return verdict("stale", `${i.table} has data for ${whole ? "it" : day} newer than the build`);
    }
  }
  return verdict("fresh", null);
}
