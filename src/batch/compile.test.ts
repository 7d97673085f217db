// Tests of the plan compiler on real DuckDB: inputs, layers, cycles, binding errors, order, event_day.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import type { SchemaColumn } from "../backends/contracts/index.js";
import { isTributaryError, type ErrorCode } from "../errors.js";
import { compilePlan, engineSetupSql, formatPlan } from "./compile.js";
import { loadModelSpecs } from "./model-spec.js";
import type { BatchPlan, SeedTable } from "./plan.js";

const LAYERS = ["t1", "t2", "mart"];

const col = (name: string, type: string): SchemaColumn => ({ name, type });

const SOURCES: ReadonlyMap<string, readonly SchemaColumn[]> = new Map([
  [
    "raw.flights",
    [
      col("flight_id", "VARCHAR"),
      col("origin", "VARCHAR"),
      col("dest", "VARCHAR"),
      col("delay", "INTEGER"),
      col("_event_time", "TIMESTAMP"),
      col("dt", "DATE"),
      col("hour", "INTEGER"),
    ],
  ],
  ["dlq.flights", [col("_raw", "VARCHAR"), col("_error", "VARCHAR"), col("dt", "DATE")]],
]);

const SEEDS: readonly SeedTable[] = [
  {
    name: "airports",
    path: "/seeds/airports.csv",
    columns: [col("iata", "VARCHAR"), col("city", "VARCHAR")],
    hash: "0".repeat(64),
    description: "Airports by IATA code.",
    owner: undefined,
  },
];

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A models folder holding `files` (path relative to it → text). */
function project(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "trb-compile-"));
  dirs.push(root);
  const dir = join(root, "models");
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** Compiles the models of `files` against the test's streams and seeds. */
async function compile(files: Record<string, string>, timezone = "UTC"): Promise<BatchPlan> {
  const dir = project(files);
  return compilePlan({
    specs: loadModelSpecs(dir, LAYERS),
    layers: LAYERS,
    timezone,
    sources: SOURCES,
    seeds: SEEDS,
  });
}

/** The error compiling `files` raises: its code is checked, its message and details returned. */
async function failure(
  files: Record<string, string>,
  code: ErrorCode,
): Promise<{ message: string; details: Record<string, unknown>; dir: string }> {
  const dir = project(files);
  try {
    await compilePlan({
      specs: loadModelSpecs(dir, LAYERS),
      layers: LAYERS,
      timezone: "UTC",
      sources: SOURCES,
      seeds: SEEDS,
    });
  } catch (e) {
    assert.ok(isTributaryError(e, code), `expected ${code}, got ${String(e)}`);
    return { message: e.message, details: e.details ?? {}, dir };
  }
  assert.fail("the plan compiled");
}

/** A partitioned model over raw.flights with the given extra select list. */
const DAILY = "SELECT event_day(_event_time) AS day, flight_id FROM raw.flights";

describe("engineSetupSql", () => {
  /** event_day of each timestamp, after the setup for `timezone`. */
  async function eventDays(timezone: string, timestamps: string[]): Promise<string[][]> {
    const db = await DuckDBInstance.create(":memory:", { threads: "1" });
    const conn = await db.connect();
    try {
      for (const sql of engineSetupSql(timezone)) await conn.run(sql);
      const rows = await conn.runAndReadAll(
        `SELECT CAST(event_day(ts) AS VARCHAR), CAST(CAST(ts AS DATE) AS VARCHAR)
           FROM (SELECT unnest($1::TIMESTAMP[]) AS ts)`,
        [`[${timestamps.map((t) => `'${t}'`).join(",")}]`],
      );
      return rows.getRowsJson() as string[][];
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  }

  const TIMES = [
    "2001-01-02 03:00:00",
    "2001-01-01 23:59:59.999",
    "2001-07-02 03:59:00",
    "2001-07-02 04:00:00",
    "2001-03-11 06:30:00",
  ];

  test("in UTC, event_day(ts) is CAST(ts AS DATE)", async () => {
    for (const [day, date] of await eventDays("UTC", TIMES)) assert.equal(day, date);
  });

  test("in America/New_York, event_day is the local date (DST included)", async () => {
    const days = (await eventDays("America/New_York", TIMES)).map(([d]) => d);
    // 03:00 UTC is 22:00 the day before in New York (EST); 04:00 UTC is midnight in summer (EDT).
    assert.deepEqual(days, ["2001-01-01", "2001-01-01", "2001-07-01", "2001-07-02", "2001-03-11"]);
  });

  test("the zone is quoted as a string literal", () => {
    const [setTz, macro] = engineSetupSql("It's/Odd");
    assert.equal(setTz, "SET TimeZone = 'UTC'");
    assert.match(macro!, /timezone\('It''s\/Odd', CAST\(ts AS TIMESTAMPTZ\)\)/);
  });
});

describe("compilePlan", () => {
  test("inputs come from the parse tree: CTEs, subqueries, joins, UNION, with positions", async () => {
    const plan = await compile({
      "t1/airports.sql": "SELECT iata, city FROM seed.airports",
      "t1/airports.yaml": "materialized: full\n",
      "t1/flights.sql": [
        "WITH good AS (SELECT * FROM raw.flights WHERE delay IS NOT NULL),", // 1
        "     bad AS (SELECT dt FROM dlq.flights)", // 2
        "SELECT event_day(g._event_time) AS day, g.flight_id, a.city", // 3
        "FROM good g", // 4
        "  JOIN t1.airports a ON a.iata = g.origin", // 5
        "WHERE g.dest IN (SELECT iata FROM seed.airports)", // 6
        "UNION ALL", // 7
        "SELECT dt, NULL, NULL FROM bad;", // 8
      ].join("\n"),
    });
    const flights = plan.models.find((m) => m.id === "t1.flights");
    assert.ok(flights);
    assert.deepEqual(
      flights.inputs.map((i) => [i.table, i.kind, i.partitioned, i.line, i.column]),
      [
        ["raw.flights", "stream", true, 1, 29],
        ["dlq.flights", "stream", true, 2, 29],
        ["t1.airports", "model", false, 5, 8],
        ["seed.airports", "seed", false, 6, 35],
      ],
    );
    assert.deepEqual(
      flights.columns.map((c) => [c.name, c.type]),
      [
        ["day", "DATE"],
        ["flight_id", "VARCHAR"],
        ["city", "VARCHAR"],
      ],
    );
  });

  test("a line holding multi-byte characters still gives the right column", async () => {
    const sql = `SELECT 'é€😀' AS x, ${DAILY.slice("SELECT ".length)}`;
    const plan = await compile({ "t1/a.sql": `-- ü\n${sql}` });
    const [input] = plan.models[0]!.inputs;
    assert.equal(input?.line, 2);
    // DuckDB reports UTF-8 byte offsets; the column counts characters (66 here, not 72).
    assert.equal(input?.column, [...sql.slice(0, sql.indexOf("raw.flights"))].length + 1);
    assert.equal(input?.column, 66);
  });

  test("an unknown table names the nearest one, the file and the line", async () => {
    const { message, details, dir } = await failure(
      { "t1/a.sql": "SELECT event_day(_event_time) AS day\nFROM raw.flight" },
      "TRB_BATCH_UNKNOWN_TABLE",
    );
    assert.equal(
      message,
      `${join(dir, "t1", "a.sql")}:2: t1.a reads raw.flight, which no stream, seed or model provides (did you mean raw.flights?)`,
    );
    assert.equal(details.line, 2);
    assert.equal(details.column, 6);
  });

  test("a table without its layer asks for the qualified name", async () => {
    const { message } = await failure(
      { "t1/a.sql": "SELECT * FROM flights" },
      "TRB_BATCH_UNKNOWN_TABLE",
    );
    assert.match(
      message,
      /a\.sql:1: t1\.a reads flights without its layer; .*raw\.flights or dlq\.flights/,
    );
  });

  test("reading a later layer is an error", async () => {
    const { message } = await failure(
      {
        "t1/a.sql": "SELECT day FROM mart.m",
        "mart/m.sql": DAILY,
      },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(
      message,
      /a\.sql:1: t1\.a reads mart\.m of the later layer mart; a model reads its own layer and earlier ones/,
    );
  });

  test("a model is one SELECT", async () => {
    const two = await failure({ "t1/a.sql": `${DAILY};\nSELECT 2;` }, "TRB_BATCH_MODEL_INVALID");
    assert.match(two.message, /a\.sql: t1\.a: a model is one SELECT statement, this file has 2/);
    const ddl = await failure(
      { "t1/a.sql": "CREATE TABLE x AS SELECT 1" },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(ddl.message, /a\.sql: t1\.a: a model is one SELECT statement \(no DDL/);
    const syntax = await failure(
      { "t1/a.sql": "SELECT day\nFROM raw.flights WHERE" },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(syntax.message, /a\.sql:2: t1\.a: the SQL does not parse: syntax error/);
    const fn = await failure(
      { "t1/a.sql": "SELECT * FROM query_table('raw.flights')" },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(fn.message, /table function query_table\(\) is not allowed/);
  });

  test("a cycle is listed in reading order", async () => {
    const { message } = await failure(
      {
        "t1/a.sql": "SELECT * FROM t1.b",
        "t1/b.sql": "SELECT * FROM t1.c JOIN raw.flights USING (flight_id)",
        "t1/c.sql": "SELECT * FROM t1.a",
      },
      "TRB_BATCH_CYCLE",
    );
    assert.match(
      message,
      /a\.sql:1: models read each other in a cycle: t1\.a → t1\.b → t1\.c → t1\.a; break it$/,
    );
    const self = await failure({ "t1/a.sql": "SELECT * FROM t1.a" }, "TRB_BATCH_CYCLE");
    assert.match(self.message, /cycle: t1\.a → t1\.a;/);
  });

  test("an unknown column carries the model, the file, the line and DuckDB's candidates", async () => {
    const { message, details, dir } = await failure(
      {
        "t1/ok.sql": DAILY,
        "t2/a.sql": [
          "SELECT day,", // 1
          "       flight_id,", // 2
          "       orign", // 3
          "FROM t1.ok JOIN raw.flights USING (flight_id)", // 4
        ].join("\n"),
      },
      "TRB_BATCH_UNKNOWN_COLUMN",
    );
    const file = join(dir, "t2", "a.sql");
    assert.ok(
      message.startsWith(`${file}:3: t2.a: Binder Error: Referenced column "orign" not found`),
      message,
    );
    assert.match(message, /Candidate bindings: .*"origin"/);
    assert.deepEqual([details.file, details.line], [file, 3]);
    // The bound output of t1.ok is what t2 sees: a column t1.ok lacks is unknown there too.
    const upstream = await failure(
      { "t1/ok.sql": DAILY, "t2/b.sql": "SELECT day, delay FROM t1.ok" },
      "TRB_BATCH_UNKNOWN_COLUMN",
    );
    assert.match(upstream.message, /b\.sql:1: t2\.b: .*"delay"/);
  });

  test("a partitioned model needs a DATE `day` column and a partitioned input", async () => {
    const none = await failure(
      { "t1/a.sql": "SELECT flight_id FROM raw.flights" },
      "TRB_BATCH_DAY_COLUMN",
    );
    assert.ok(none.message.startsWith(`${join(none.dir, "t1", "a.sql")}: t1.a is partitioned`));
    assert.match(none.message, /outputs no `day` column; add `event_day\(<event time>\) AS day`/);
    const typed = await failure(
      { "t1/a.sql": "SELECT _event_time AS day FROM raw.flights" },
      "TRB_BATCH_DAY_COLUMN",
    );
    assert.match(typed.message, /outputs `day` as TIMESTAMP/);
    const seedOnly = await failure(
      { "t1/a.sql": "SELECT DATE '2001-01-01' AS day, iata FROM seed.airports" },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(seedOnly.message, /t1\.a is partitioned by day but reads no partitioned input/);
  });

  test("a full-refresh model over a seed compiles, its seed input not partitioned", async () => {
    const plan = await compile({
      "t1/airports.sql": "SELECT iata, upper(city) AS city, 1::BIGINT AS n FROM seed.airports",
      "t1/airports.yaml": "materialized: full\ndescription: Airports, tidied.\n",
    });
    const [airports] = plan.models;
    assert.equal(airports?.id, "t1.airports");
    assert.equal(airports?.spec.materialized, "full");
    assert.deepEqual(airports?.inputs, [
      { table: "seed.airports", line: 1, column: 55, kind: "seed", partitioned: false },
    ]);
    assert.deepEqual(airports?.columns, [
      col("iata", "VARCHAR"),
      col("city", "VARCHAR"),
      col("n", "BIGINT"),
    ]);
  });

  test("dependency order, ties by layer then name, and dependents", async () => {
    const dir = project({
      "mart/summary.sql": "SELECT day, count(*) AS n FROM t2.enriched GROUP BY day",
      "t2/enriched.sql":
        "SELECT f.day, f.flight_id, a.city FROM t1.flights f JOIN t1.airports a ON true",
      "t1/flights.sql": DAILY,
      "t1/airports.sql": "SELECT * FROM seed.airports",
      "t1/airports.yaml": "materialized: full\n",
      "t1/zz_late.sql": "SELECT * FROM t1.flights",
      "t1/aa_late.sql": "SELECT * FROM t1.zz_late",
    });
    const specs = loadModelSpecs(dir, LAYERS);
    const compileSpecs = (list: typeof specs): Promise<BatchPlan> =>
      compilePlan({ specs: list, layers: LAYERS, timezone: "UTC", sources: SOURCES, seeds: SEEDS });
    const plan = await compileSpecs(specs);
    // The order does not depend on the order specs are given in.
    const shuffled = await compileSpecs([...specs].reverse());
    assert.deepEqual(
      shuffled.models.map((m) => m.id),
      plan.models.map((m) => m.id),
    );
    assert.deepEqual(
      plan.models.map((m) => [m.order, m.id]),
      [
        [0, "t1.airports"],
        [1, "t1.flights"],
        [2, "t1.zz_late"],
        [3, "t1.aa_late"],
        [4, "t2.enriched"],
        [5, "mart.summary"],
      ],
    );
    const byId = new Map(plan.models.map((m) => [m.id, m]));
    assert.deepEqual(byId.get("t1.flights")?.dependents, ["t1.zz_late", "t2.enriched"]);
    assert.deepEqual(byId.get("t1.airports")?.dependents, ["t2.enriched"]);
    assert.deepEqual(byId.get("mart.summary")?.dependents, []);
    assert.deepEqual(
      byId.get("t2.enriched")?.inputs.map((i) => [i.table, i.kind, i.partitioned]),
      [
        ["t1.flights", "model", true],
        ["t1.airports", "model", false],
      ],
    );
    assert.deepEqual(byId.get("mart.summary")?.columns, [col("day", "DATE"), col("n", "BIGINT")]);
    assert.ok(Object.isFrozen(plan) && Object.isFrozen(plan.models[0]!.columns));
    assert.ok(Object.isFrozen(plan.models[0]!.inputs[0]));
    assert.deepEqual(plan.layers, LAYERS);
    assert.equal(plan.seeds[0]?.name, "airports");
  });

  test("the hash follows the SQL, the materialization and the time zone", async () => {
    const base = await compile({ "t1/a.sql": DAILY });
    const same = await compile({ "t1/a.sql": `${DAILY};\n` });
    const changed = await compile({ "t1/a.sql": `${DAILY} WHERE delay > 0` });
    const zoned = await compile({ "t1/a.sql": DAILY }, "Europe/Paris");
    const hash = (p: BatchPlan): string => p.models[0]!.hash;
    assert.match(hash(base), /^[0-9a-f]{64}$/);
    assert.equal(hash(same), hash(base));
    assert.notEqual(hash(changed), hash(base));
    assert.notEqual(hash(zoned), hash(base));
  });

  test("tests must name output columns; relationships a known table and column", async () => {
    const missing = await failure(
      {
        "t1/a.sql": DAILY,
        "t1/a.yaml": ["tests:", "  columns:", "    day: [not_null]", "    orign: [not_null]"].join(
          "\n",
        ),
      },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.ok(
      missing.message.startsWith(`${join(missing.dir, "t1", "a.yaml")}:4: t1.a: `),
      missing.message,
    );
    assert.match(missing.message, /test not_null\(orign\): t1\.a has no column orign/);
    const key = await failure(
      { "t1/a.sql": DAILY, "t1/a.yaml": "owner: x\nunique_key: [day, flightid]\n" },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(
      key.message,
      /a\.yaml:2: t1\.a: unique_key: t1\.a has no column flightid \(did you mean flight_id\?\)/,
    );
    const to = await failure(
      {
        "t1/a.sql": DAILY,
        "t1/a.yaml":
          "tests:\n  columns:\n    flight_id:\n      - relationships: { to: seed.airport, field: iata }\n",
      },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(
      to.message,
      /a\.yaml:3: .*no stream, seed or model provides seed\.airport \(did you mean seed\.airports\?\)/,
    );
    const field = await failure(
      {
        "t1/a.sql": DAILY,
        "t1/a.yaml":
          "tests:\n  columns:\n    flight_id:\n      - relationships: { to: seed.airports, field: iatta }\n",
      },
      "TRB_BATCH_MODEL_INVALID",
    );
    assert.match(field.message, /seed\.airports has no column iatta \(did you mean iata\?\)/);
    const ok = await compile({
      "t1/a.sql": DAILY,
      "t1/a.yaml":
        "tests:\n  columns:\n    flight_id:\n      - relationships: { to: seed.airports, field: iata }\n",
    });
    assert.equal(ok.models[0]?.spec.tests.length, 1);
  });

  test("formatPlan shows each model in order with inputs, columns and tests, then seeds", async () => {
    const plan = await compile({
      "t1/flights.sql": DAILY,
      "t1/flights.yaml":
        "description: One row per flight.\nunique_key: flight_id\npii: [flight_id]\n",
      "mart/daily.sql": "SELECT day, count(*) AS flights FROM t1.flights GROUP BY day",
    });
    const text = formatPlan(plan);
    const lines = text.split("\n");
    const first = lines.findIndex((l) => l.startsWith("1. t1.flights (partitioned)"));
    const second = lines.findIndex((l) => l.startsWith("2. mart.daily (partitioned)"));
    assert.ok(first > 0 && second > first, text);
    assert.match(text, /One row per flight\./);
    assert.match(text, /reads: raw\.flights \(stream\)/);
    assert.match(text, /reads: t1\.flights \(by day\)/);
    assert.match(text, /read by: mart\.daily/);
    assert.match(text, /day\s+DATE/);
    assert.match(text, /flight_id\s+VARCHAR\s+\(pii\)/);
    assert.match(text, /tests: unique\(flight_id\)/);
    assert.match(text, /Seeds:\n {2}seed\.airports {2}\/seeds\/airports\.csv/);
    assert.match(text, /columns: iata VARCHAR, city VARCHAR/);
  });

  test("a time zone DuckDB does not know is a config error", async () => {
    await assert.rejects(
      compile({ "t1/a.sql": DAILY }, "Nowhere/Atlantis"),
      (e: unknown) =>
        isTributaryError(e, "TRB_CONFIG_INVALID") && /Nowhere\/Atlantis/.test(e.message),
    );
  });
});
