// Test helper of the batch queue mode: a project with partitioned, full and failing models, raw
// events over four days committed straight into the catalog, and the rows a dataset holds.
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { stringify } from "yaml";
import type {
  BatchTaskInfo,
  CatalogStore,
  Commit,
  DatasetRef,
  ObjectStore,
} from "../backends/contracts/index.js";
import type { Pipeline } from "../config/index.js";
import { quoteString, rawDataset } from "../lake/index.js";

/** The days the raw events cover. */
export const DAYS = ["2001-01-01", "2001-01-02", "2001-01-03", "2001-01-04"] as const;

/** The day whose events hold a NULL `n`: `t1.checked`'s not_null test fails on it. */
export const BAD_DAY = "2001-01-03";

/** Every model dataset of the project. */
export const MODELS: readonly DatasetRef[] = [
  { layer: "t1", name: "codes" },
  { layer: "t1", name: "daily" },
  { layer: "t1", name: "checked" },
  { layer: "t2", name: "doubled" },
  { layer: "mart", name: "checked_sum" },
];

/**
 * Writes a project into `dir`: stream `events`, seed `codes`, models t1.daily → t2.doubled,
 * t1.checked (a not_null test that fails on BAD_DAY) → mart.checked_sum, and t1.codes (full).
 */
export function writeProject(
  dir: string,
  batch: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "tributary.yaml"),
    stringify({
      name: "queue-test",
      streams: { events: { fields: { n: "integer" } } },
      seeds: { codes: { path: "codes.csv" } },
      batch: { retry_backoff: "10ms", ...batch },
      ...extra,
    }),
  );
  writeFileSync(join(dir, "codes.csv"), "code,label\nA,alpha\nB,beta\n");
  const models: Record<string, string> = {
    "t1/codes.sql": "SELECT code, upper(label) AS label FROM seed.codes",
    "t1/codes.yaml": "materialized: full\n",
    "t1/daily.sql":
      "SELECT event_day(_event_time) AS day, count(*)::BIGINT AS events, sum(n)::BIGINT AS total FROM raw.events GROUP BY ALL",
    "t2/doubled.sql": "SELECT day, events * 2 AS doubled, total FROM t1.daily",
    "t1/checked.sql": "SELECT event_day(_event_time) AS day, _event_id AS id, n FROM raw.events",
    "t1/checked.yaml": "tests:\n  columns:\n    n: [not_null]\n",
    "mart/checked_sum.sql": "SELECT day, sum(n)::BIGINT AS s FROM t1.checked GROUP BY ALL",
  };
  for (const [path, text] of Object.entries(models)) {
    mkdirSync(join(dir, "models", path.split("/")[0]!), { recursive: true });
    writeFileSync(join(dir, "models", path), text);
  }
}

/**
 * Writes raw.events files into a local lake (one per day, `2 + i` events on the i-th day, one
 * with a NULL `n` on BAD_DAY) and commits them, as land would.
 */
export async function landRaw(pipeline: Pipeline, catalog: CatalogStore): Promise<void> {
  const def = rawDataset(pipeline.streams.get("events")!);
  await catalog.ensureDataset(def.ref, def);
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    for (const [i, day] of DAYS.entries()) {
      const key = `raw/events/dt=${day}/hour=00/part-${i}.parquet`;
      const path = join(pipeline.lakeDir, key);
      mkdirSync(dirname(path), { recursive: true });
      const rows = 3 + i;
      const n = day === BAD_DAY ? "CASE WHEN x = 0 THEN NULL ELSE x + 1 END" : "x + 1";
      await conn.run(
        `COPY (SELECT '${day}-' || x AS _event_id,
                      TIMESTAMP '${day} 00:10:00' + x * INTERVAL 1 MINUTE AS _received_at,
                      TIMESTAMP '${day} 00:10:00' + x * INTERVAL 1 MINUTE AS _event_time,
                      (${n})::BIGINT AS n, NULL::JSON AS _extra
                 FROM range(${rows}) t(x))
           TO ${quoteString(path)} (FORMAT parquet)`,
      );
      const start = Date.parse(`${day}T00:10:00Z`);
      await catalog.commit({
        dataset: def.ref,
        add: [
          {
            path: key,
            partition: { dt: day, hour: "00" },
            rows,
            bytes: statSync(path).size,
            minTime: start,
            maxTime: start + (rows - 1) * 60_000,
          },
        ],
        summary: `test: ${rows} events of ${day}`,
      });
    }
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** Every row of a dataset's live files (Hive partition columns included), sorted, as JSON. */
export async function datasetRows(
  catalog: CatalogStore,
  lake: ObjectStore,
  ref: DatasetRef,
): Promise<unknown[][]> {
  const files = await catalog.files(ref);
  if (files.length === 0) return [];
  const paths = await Promise.all(files.map((f) => lake.localPath(f.path)));
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const reader = await conn.runAndReadAll(
      `SELECT * FROM read_parquet([${paths.map(quoteString).join(", ")}], hive_partitioning = ${
        files.some((f) => Object.keys(f.partition).length > 0) ? "true" : "false"
      }) ORDER BY ALL`,
    );
    return reader.getRowsJson() as unknown[][];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/**
 * A catalog that reports the tasks recorded and the commits made through it, to tell which engine
 * ran what (each engine gets its own).
 */
export function recording(
  catalog: CatalogStore,
  tasks: BatchTaskInfo[],
  commits: Commit[] = [],
): CatalogStore {
  return new Proxy(catalog, {
    get(target, prop) {
      if (prop === "recordTask")
        return (t: BatchTaskInfo) => {
          tasks.push(t);
          return target.recordTask(t);
        };
      if (prop === "commit")
        return (c: Commit) => {
          commits.push(c);
          return target.commit(c);
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as () => unknown).bind(target) : value;
    },
  });
}
