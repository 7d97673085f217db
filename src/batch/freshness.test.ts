// Tests of the freshness rules and of how a run's tasks are chosen and chunked, on hand-built plans.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { PartitionState, StoredFile } from "../backends/contracts/index.js";
import { planTasks } from "./engine.js";
import { checkPartitions, daysOfFile, type CatalogView } from "./freshness.js";
import type { BatchPlan, CompiledModel, ResolvedInput } from "./plan.js";

function input(table: string, kind: ResolvedInput["kind"], partitioned: boolean): ResolvedInput {
  return { table, kind, partitioned, line: undefined, column: undefined };
}

function model(id: string, inputs: ResolvedInput[], full = false): CompiledModel {
  const [layer, name] = id.split(".") as [string, string];
  return {
    id,
    inputs,
    spec: {
      layer,
      name,
      sqlFile: `/m/${layer}/${name}.sql`,
      propertiesFile: undefined,
      sql: "SELECT 1",
      description: undefined,
      owner: undefined,
      materialized: full ? "full" : "partitioned",
      uniqueKey: undefined,
      pii: [],
      tests: [],
      tags: [],
    },
    columns: [],
    hash: `hash-${id}`,
    order: 0,
    dependents: [],
  };
}

/** raw.e → t1.a → t2.b; seed.s → t2.b; t2.all (full) reads t1.a. */
const PLAN: BatchPlan = {
  models: [
    model("t1.a", [input("raw.e", "stream", true)]),
    model("t2.b", [input("t1.a", "model", true), input("seed.s", "seed", false)]),
    model("t2.all", [input("t1.a", "model", true)], true),
  ],
  seeds: [],
  layers: ["t1", "t2"],
  timezone: "UTC",
};

const HOUR = 3_600_000;
const day = (d: string): number => Date.parse(`${d}T00:00:00Z`);

function rawFile(d: string, addedIn: number, hours = 1): StoredFile {
  return {
    path: `raw/e/${d}-${addedIn}.parquet`,
    partition: { dt: d, hour: "00" },
    rows: 10,
    bytes: 100,
    minTime: day(d),
    maxTime: day(d) + hours * HOUR - 1,
    dataset: "raw.e",
    addedIn,
    schemaVersion: 1,
  };
}

function modelFile(ds: string, d: string, addedIn: number): StoredFile {
  return {
    path: `${ds}/${d}-${addedIn}.parquet`,
    partition: { day: d },
    rows: 10,
    bytes: 100,
    minTime: null,
    maxTime: null,
    dataset: ds,
    addedIn,
    schemaVersion: 1,
  };
}

function state(
  modelId: string,
  d: string,
  inputSnapshot: number,
  extra: Partial<PartitionState> = {},
): PartitionState {
  return {
    model: modelId,
    day: d,
    status: "fresh",
    modelHash: `hash-${modelId}`,
    inputSnapshot,
    builtAt: "2026-01-01T00:00:00Z",
    runId: 1,
    rows: 10,
    reason: null,
    ...extra,
  };
}

function view(files: StoredFile[], states: PartitionState[]): CatalogView {
  const byDs = new Map<string, StoredFile[]>();
  for (const f of files) byDs.set(f.dataset, [...(byDs.get(f.dataset) ?? []), f]);
  const byModel = new Map<string, Map<string, PartitionState>>();
  for (const s of states) {
    const m = byModel.get(s.model) ?? new Map<string, PartitionState>();
    m.set(s.day, s);
    byModel.set(s.model, m);
  }
  return { snapshot: 100, files: byDs, states: byModel };
}

/** The built-once catalog: raw days 1 and 2 at snapshot 1, every partition built at snapshot 5. */
function builtView(
  extraFiles: StoredFile[] = [],
  patch: (s: PartitionState) => PartitionState = (s) => s,
): CatalogView {
  const files = [
    rawFile("2001-01-01", 1),
    rawFile("2001-01-02", 1),
    modelFile("t1.a", "2001-01-01", 3),
    modelFile("t1.a", "2001-01-02", 3),
    { ...modelFile("seed.s", "x", 2), partition: {} },
    ...extraFiles,
  ];
  const states = [
    state("t1.a", "2001-01-01", 2),
    state("t1.a", "2001-01-02", 2),
    state("t2.b", "2001-01-01", 5),
    state("t2.b", "2001-01-02", 5),
    state("t2.all", "*", 5),
  ].map(patch);
  return view(files, states);
}

const statusOf = (checks: ReturnType<typeof checkPartitions>): Record<string, string> =>
  Object.fromEntries(checks.map((c) => [`${c.model}@${c.day}`, c.status]));

describe("checkPartitions", () => {
  test("everything built after its inputs is fresh", () => {
    assert.deepEqual(statusOf(checkPartitions(PLAN, builtView())), {
      "t1.a@2001-01-01": "fresh",
      "t1.a@2001-01-02": "fresh",
      "t2.b@2001-01-01": "fresh",
      "t2.b@2001-01-02": "fresh",
      "t2.all@*": "fresh",
    });
  });

  test("a late raw file stales its day and everything downstream of that day only", () => {
    const checks = statusOf(checkPartitions(PLAN, builtView([rawFile("2001-01-02", 9)])));
    assert.equal(checks["t1.a@2001-01-02"], "stale");
    assert.equal(checks["t2.b@2001-01-02"], "stale");
    assert.equal(checks["t2.all@*"], "stale");
    assert.equal(checks["t1.a@2001-01-01"], "fresh");
    assert.equal(checks["t2.b@2001-01-01"], "fresh");
  });

  test("a new raw day is missing for every partitioned model", () => {
    const checks = statusOf(checkPartitions(PLAN, builtView([rawFile("2001-01-03", 9)])));
    assert.equal(checks["t1.a@2001-01-03"], "missing");
    assert.equal(checks["t2.b@2001-01-03"], "missing");
  });

  test("a changed model hash or seed stales the partitions that depend on it", () => {
    const changed = builtView([], (s) => (s.model === "t1.a" ? { ...s, modelHash: "old" } : s));
    const a = statusOf(checkPartitions(PLAN, changed));
    assert.equal(a["t1.a@2001-01-01"], "stale");
    assert.equal(a["t2.b@2001-01-01"], "stale", "upstream stale");
    const seed = builtView([{ ...modelFile("seed.s", "y", 7), partition: {} }]);
    const b = statusOf(checkPartitions(PLAN, seed));
    assert.equal(b["t1.a@2001-01-01"], "fresh");
    assert.equal(b["t2.b@2001-01-01"], "stale");
    assert.equal(b["t2.b@2001-01-02"], "stale");
  });

  test("failed states stay failed; a raw file spanning midnight belongs to both days", () => {
    const failed = builtView([], (s) =>
      s.model === "t1.a" && s.day === "2001-01-01" ? { ...s, status: "failed", reason: "x" } : s,
    );
    const checks = statusOf(checkPartitions(PLAN, failed));
    assert.equal(checks["t1.a@2001-01-01"], "failed");
    assert.equal(checks["t2.b@2001-01-01"], "stale");
    const f = {
      ...rawFile("2001-01-01", 1),
      minTime: day("2001-01-01") + 23 * HOUR,
      maxTime: day("2001-01-02") + 1,
    };
    assert.deepEqual(daysOfFile(f, "UTC"), ["2001-01-01", "2001-01-02"]);
    assert.deepEqual(daysOfFile(f, "America/New_York"), ["2001-01-01"]);
  });
});

describe("planTasks", () => {
  const checks = checkPartitions(
    PLAN,
    builtView([rawFile("2001-01-02", 9), rawFile("2001-01-03", 9)]),
  );

  test("only non-fresh days are built, with their dependents, in dependency order", () => {
    const tasks = planTasks(
      PLAN,
      checks,
      { trigger: "repair", days: ["2001-01-01", "2001-01-02", "2001-01-03"] },
      1,
    );
    assert.deepEqual(
      tasks.map((t) => [t.model.id, t.days]),
      [
        ["t1.a", ["2001-01-02"]],
        ["t1.a", ["2001-01-03"]],
        ["t2.b", ["2001-01-02"]],
        ["t2.b", ["2001-01-03"]],
        ["t2.all", ["*"]],
      ],
    );
    const byKey = new Map(tasks.map((t) => [t.key, t]));
    for (const t of tasks)
      for (const k of t.after) assert.ok(tasks.indexOf(byKey.get(k)!) < tasks.indexOf(t));
    const b = tasks.find((t) => t.model.id === "t2.b" && t.days[0] === "2001-01-03")!;
    assert.deepEqual(
      b.after.map((k) => byKey.get(k)!.days),
      [["2001-01-03"]],
      "same chunk upstream",
    );
    const all = tasks.find((t) => t.model.id === "t2.all")!;
    assert.equal(all.after.length, 2, "a full model waits for every upstream chunk");
  });

  test("a manual run rebuilds fresh days too; a model filter keeps its dependents", () => {
    const tasks = planTasks(
      PLAN,
      checks,
      { trigger: "manual", days: ["2001-01-01"], onlyStale: false, models: ["t2.b"] },
      2,
    );
    assert.deepEqual(
      tasks.map((t) => t.model.id),
      ["t2.b"],
    );
    const everything = planTasks(
      PLAN,
      checks,
      { trigger: "manual", days: ["2001-01-01"], onlyStale: false },
      2,
    );
    assert.deepEqual(
      everything.map((t) => t.model.id),
      ["t1.a", "t2.b", "t2.all"],
    );
  });

  test("a backfill is cut into chunks that keep every core busy, at most 31 days each", () => {
    const days = Array.from({ length: 100 }, (_, i) =>
      new Date(day("2001-01-01") + i * 86_400_000).toISOString().slice(0, 10),
    );
    const tasks = planTasks(PLAN, [], { trigger: "backfill", days, onlyStale: false }, 2);
    const a = tasks.filter((t) => t.model.id === "t1.a");
    assert.equal(a.length, 4);
    assert.ok(a.every((t) => t.days.length <= 31));
    assert.deepEqual(
      a.flatMap((t) => t.days),
      days,
    );
  });
});
