// Tests of the SQL guard: one read-only SELECT over catalog datasets, nothing that touches files or settings.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { isTributaryError, type ErrorCode } from "../errors.js";
import { guardSql } from "./sql-guard.js";

const KNOWN: ReadonlySet<string> = new Set(["raw.flights", "dlq.flights", "raw.web"]);

describe("guardSql", () => {
  let db: DuckDBInstance;
  let conn: DuckDBConnection;
  before(async () => {
    db = await DuckDBInstance.create(":memory:");
    conn = await db.connect();
  });
  after(() => {
    conn.closeSync();
    db.closeSync();
  });

  const accepts = async (sql: string, datasets: string[]): Promise<void> => {
    const r = await guardSql(conn, sql, KNOWN);
    assert.deepEqual([...r.datasets].sort(), [...datasets].sort(), sql);
  };
  const rejects = async (sql: string, code: ErrorCode, message?: RegExp): Promise<void> => {
    await assert.rejects(
      guardSql(conn, sql, KNOWN),
      (e: unknown) => {
        assert.ok(isTributaryError(e, code), `${sql}: expected ${code}, got ${String(e)}`);
        if (message) assert.match(e.message, message, sql);
        return true;
      },
      sql,
    );
  };

  test("accepts SELECT over known datasets and reports which it reads", async () => {
    await accepts("SELECT * FROM raw.flights", ["raw.flights"]);
    await accepts("FROM raw.flights", ["raw.flights"]);
    await accepts('SELECT count(*) FROM "raw"."flights" WHERE delay > 10', ["raw.flights"]);
    await accepts("SELECT * FROM RAW.Flights", ["raw.flights"]);
    await accepts(
      "SELECT origin, avg(delay) FROM raw.flights GROUP BY ALL ORDER BY 2 DESC LIMIT 5",
      ["raw.flights"],
    );
    await accepts("SELECT 1 + 1", []);
  });

  test("rejects SHOW (lists tables past the read check) but checks DESCRIBE/SUMMARIZE like a SELECT", async () => {
    await rejects("SHOW TABLES", "TRB_SERVE_SQL_FORBIDDEN", /SHOW/);
    await rejects("SHOW ALL TABLES", "TRB_SERVE_SQL_FORBIDDEN", /SHOW/);
    await accepts("DESCRIBE raw.flights", ["raw.flights"]);
    await accepts("SUMMARIZE SELECT delay FROM raw.flights", ["raw.flights"]);
    await rejects("DESCRIBE raw.nope", "TRB_SERVE_SQL_UNKNOWN_TABLE");
  });

  test("accepts CTEs, joins, subqueries, set operations and row generators", async () => {
    await accepts(
      "WITH x AS (SELECT origin, count(*) AS c FROM raw.flights GROUP BY 1) SELECT * FROM x JOIN raw.web w ON w.user_id = x.origin",
      ["raw.flights", "raw.web"],
    );
    await accepts("WITH a AS (SELECT 1 AS v), b AS (SELECT * FROM a) SELECT * FROM b", []);
    await accepts(
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
      [],
    );
    await accepts("WITH x AS (SELECT 1) SELECT * FROM (SELECT * FROM x)", []);
    await accepts("WITH x AS (SELECT 1 AS a) SELECT * FROM x UNION ALL SELECT * FROM x", []);
    await accepts(
      "SELECT (SELECT count(*) FROM dlq.flights), f.* FROM raw.flights f, LATERAL (SELECT 1) t",
      ["dlq.flights", "raw.flights"],
    );
    await accepts("SELECT _event_id FROM raw.flights UNION ALL SELECT _event_id FROM raw.web", [
      "raw.flights",
      "raw.web",
    ]);
    await accepts("SELECT * FROM raw.flights WHERE origin IN (SELECT _reason FROM dlq.flights)", [
      "raw.flights",
      "dlq.flights",
    ]);
    await accepts("SELECT * FROM range(10)", []);
    await accepts("SELECT * FROM generate_series(1, 3)", []);
    await accepts("SELECT * FROM unnest([1, 2, 3])", []);
  });

  test("rejects DDL, DML and every other statement kind", async () => {
    for (const sql of [
      "CREATE TABLE t (a INT)",
      "CREATE VIEW v AS SELECT 1",
      "DROP VIEW raw.flights",
      "INSERT INTO raw.flights VALUES (1)",
      "UPDATE raw.flights SET delay = 1",
      "DELETE FROM raw.flights",
      "COPY raw.flights TO '/tmp/x.csv'",
      "COPY (SELECT 1) TO '/tmp/x.parquet'",
      "ATTACH '/tmp/x.db' AS x",
      "DETACH x",
      "INSTALL httpfs",
      "LOAD httpfs",
      "SET threads = 1",
      "SET enable_external_access = true",
      "RESET memory_limit",
      "PRAGMA version",
      "CALL pragma_version()",
      "EXPORT DATABASE '/tmp/x'",
      "CHECKPOINT",
      "USE x",
      "EXPLAIN ANALYZE SELECT 1",
    ]) {
      await rejects(sql, "TRB_SERVE_SQL_FORBIDDEN");
    }
  });

  test("rejects more than one statement", async () => {
    await rejects("SELECT 1; SELECT 2", "TRB_SERVE_SQL_FORBIDDEN", /exactly one statement/);
    await rejects("SELECT * FROM raw.flights; DROP VIEW raw.flights", "TRB_SERVE_SQL_FORBIDDEN");
  });

  test("rejects table functions that read files or the engine's state", async () => {
    for (const [sql, fn] of [
      ["SELECT * FROM read_csv('/etc/passwd')", "read_csv"],
      ["SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"],
      ["SELECT * FROM read_parquet('/lake/**/*.parquet')", "read_parquet"],
      ["SELECT * FROM read_json_auto('/etc/x.json')", "read_json_auto"],
      ["SELECT * FROM read_text('/etc/passwd')", "read_text"],
      ["SELECT * FROM read_blob('/etc/passwd')", "read_blob"],
      ["SELECT * FROM glob('/*')", "glob"],
      ["SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"],
      ["SELECT * FROM duckdb_settings()", "duckdb_settings"],
      ["SELECT * FROM system.main.duckdb_settings()", "duckdb_settings"],
      ["SELECT * FROM duckdb_tables()", "duckdb_tables"],
      ["SELECT * FROM pragma_table_info('raw.flights')", "pragma_table_info"],
      ["SELECT * FROM query('SELECT 1')", "query"],
      [
        "SELECT * FROM raw.flights WHERE origin IN (SELECT * FROM read_csv('/etc/passwd'))",
        "read_csv",
      ],
      ["WITH x AS (SELECT * FROM glob('/*')) SELECT * FROM x", "glob"],
    ] as const) {
      await rejects(sql, "TRB_SERVE_SQL_FORBIDDEN", new RegExp(`${fn}\\(\\)`));
    }
  });

  test("rejects scalar functions that reveal settings, the environment or files", async () => {
    for (const sql of [
      "SELECT current_setting('threads')",
      "SELECT getenv('HOME')",
      "SELECT read_blob('/etc/passwd')",
      "SELECT * FROM raw.flights WHERE origin = current_setting('home_directory')",
      "SELECT json_execute_serialized_sql('x')",
      "SELECT upper(CURRENT_SETTING('temp_directory'))",
    ]) {
      await rejects(sql, "TRB_SERVE_SQL_FORBIDDEN");
    }
  });

  test("rejects replacement scans of files, also behind a CTE of the same name out of scope", async () => {
    await rejects("SELECT * FROM '/etc/passwd'", "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects("SELECT * FROM '/lake/raw/flights/x.parquet'", "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects('SELECT * FROM "data.csv"', "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects(
      'SELECT * FROM (WITH "/etc/passwd" AS (SELECT 1) SELECT 1), "/etc/passwd"',
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
    );
    await rejects(
      'WITH a AS (SELECT * FROM "/etc/passwd"), "/etc/passwd" AS (SELECT 1) SELECT * FROM a',
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
    );
  });

  test("rejects unknown tables with a did-you-mean", async () => {
    await rejects(
      "SELECT * FROM raw.flihgts",
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
      /did you mean raw\.flights\?/,
    );
    await rejects(
      "SELECT * FROM flights",
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
      /did you mean raw\.flights\?/,
    );
    await rejects("SELECT * FROM raw.nothing_like_it", "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects(
      "SELECT * FROM raw.flights JOIN mart.daily USING (origin)",
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
      /mart\.daily/,
    );
  });

  test("rejects system catalogs and catalog-qualified names", async () => {
    await rejects("SELECT * FROM information_schema.tables", "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects("SELECT * FROM information_schema.columns", "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects("SELECT * FROM sqlite_master", "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects("SELECT * FROM pg_catalog.pg_tables", "TRB_SERVE_SQL_UNKNOWN_TABLE");
    await rejects("SELECT * FROM memory.main.x", "TRB_SERVE_SQL_FORBIDDEN");
    await rejects("SELECT * FROM other.raw.flights", "TRB_SERVE_SQL_FORBIDDEN");
  });

  test("empty or unparsable SQL is TRB_SERVE_SQL_INVALID", async () => {
    await rejects("", "TRB_SERVE_SQL_INVALID");
    await rejects("   \n ", "TRB_SERVE_SQL_INVALID");
    await rejects("SELEC 1", "TRB_SERVE_SQL_INVALID", /does not parse/);
    await rejects("SELECT * FROM", "TRB_SERVE_SQL_INVALID");
  });
});
