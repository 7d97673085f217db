// The SQL sandbox of POST /v1/query: one read-only SELECT over catalog tables, limited in rows and time.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  KEYS,
  defaultConfig,
  merge,
  records,
  sqlString,
  startTestNode,
  type HttpResult,
  type TestNode,
} from "./harness.js";

const MAX_ROWS = 1000;
/** Long enough for every legit query here on a loaded machine; the slow query never ends. */
const TIMEOUT_MS = 1500;

/** A key that may read raw.* only. */
const RAW_READER = { id: "raw-reader", secret: "raw-reader-secret-01" };

describe("SQL sandbox of POST /v1/query", () => {
  let t: TestNode;
  let lakeFile: string;
  const sent = Array.from({ length: 12 }, (_, i) => ({
    event_id: `e${i}`,
    ts: new Date(Date.UTC(2024, 4, 1, i)).toISOString(),
    user_id: `u${i % 3}`,
    amount: 2 ** 40 + i,
  }));
  const bad = [{ event_id: "bad1", user_id: 5 }, "not an object"];

  const sql = (text: string, secret: string = KEYS.reader.secret): Promise<HttpResult> =>
    t.post("/v1/query", { sql: text }, { authorization: `Bearer ${secret}` });

  /** Asserts a refusal: status, code, and that nothing of the target leaked into the answer. */
  const refused = async (
    text: string,
    status: number,
    codes: string | string[],
  ): Promise<HttpResult> => {
    const res = await sql(text);
    const allowed = Array.isArray(codes) ? codes : [codes];
    assert.equal(res.status, status, `${text}\n→ ${res.status} ${res.text}`);
    assert.ok(allowed.includes(res.json?.error?.code), `${text}\n→ ${res.text}`);
    assert.equal(typeof res.json.error.message, "string");
    assert.doesNotMatch(res.text, /root:x?:0:0/, "no /etc/passwd content");
    return res;
  };

  before(async () => {
    t = await startTestNode(
      merge(defaultConfig(), {
        serve: { max_rows: MAX_ROWS, query_timeout: `${TIMEOUT_MS}ms` },
        keys: [
          ...(defaultConfig().keys as unknown[]),
          { id: RAW_READER.id, secret: RAW_READER.secret, scopes: ["read:raw.*"] },
        ],
      }),
    );
    const res = await t.send("events", [...sent, ...bad]);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.accepted, sent.length);
    assert.equal(res.json.dead_lettered, bad.length);
    await t.flush();
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith(".parquet")) files.push(join(dir, e.name));
      }
    };
    walk(join(t.pipeline.lakeDir, "raw", "events"));
    assert.ok(files.length > 0, "the flush wrote lake files");
    lakeFile = files[0]!;
  });
  after(async () => {
    await t?.close();
  });

  it("a legit query returns columns and rows; BIGINT comes back as numbers", async () => {
    const res = await t.query(
      "SELECT event_id, amount, user_id, epoch_ms(ts) AS ts_ms FROM raw.events ORDER BY event_id",
    );
    assert.deepEqual(
      res.columns.map((c) => c.name),
      ["event_id", "amount", "user_id", "ts_ms"],
    );
    assert.equal(res.columns[1]!.type, "BIGINT");
    const expected = [...sent].sort((a, b) => a.event_id.localeCompare(b.event_id));
    assert.deepEqual(
      res.rows,
      expected.map((e) => [e.event_id, e.amount, e.user_id, Date.parse(e.ts)]),
    );
    assert.ok(res.snapshot > 0);
  });

  it("aggregates, CTEs, joins of catalog tables and table-free SELECTs work", async () => {
    const agg = await t.query(
      "SELECT user_id, count(*) AS n, sum(amount) AS total FROM raw.events GROUP BY ALL ORDER BY user_id",
    );
    const byUser = new Map<string, { n: number; total: number }>();
    for (const e of sent) {
      const u = byUser.get(e.user_id) ?? { n: 0, total: 0 };
      byUser.set(e.user_id, { n: u.n + 1, total: u.total + e.amount });
    }
    assert.deepEqual(
      agg.rows,
      [...byUser.entries()].sort().map(([u, v]) => [u, v.n, v.total]),
    );
    const cte = await t.query(
      "WITH x AS (SELECT user_id FROM raw.events) SELECT count(*) AS n FROM x JOIN raw.events e USING (user_id)",
    );
    const perUser = [...byUser.values()].reduce((s, v) => s + v.n * v.n, 0);
    assert.deepEqual(cte.rows, [[perUser]]);
    const plain = await t.query(
      "SELECT 9007199254740991::BIGINT AS safe, 9007199254740993::BIGINT AS unsafe, 1.5 AS d",
    );
    assert.equal(plain.rows[0]![0], 9007199254740991);
    // Past 2^53 a JSON number would round; the exact value must survive (as text).
    assert.equal(String(plain.rows[0]![1]), "9007199254740993");
    const series = await t.query("SELECT count(*) AS n FROM range(10)");
    assert.deepEqual(series.rows, [[10]]);
  });

  it("dlq.events is queryable with _reason and _raw", async () => {
    const got = records(await t.query("SELECT _reason, _raw FROM dlq.events ORDER BY _raw"));
    assert.equal(got.length, bad.length);
    const raws = bad.map((b) => JSON.stringify(b)).sort();
    assert.deepEqual(
      got.map((r) => r._raw),
      raws,
    );
    for (const r of got) assert.ok(String(r._reason).length > 0);
  });

  it("scopes apply per dataset", async () => {
    const ok = await sql("SELECT count(*) FROM raw.events", RAW_READER.secret);
    assert.equal(ok.status, 200, ok.text);
    const res = await sql("SELECT count(*) FROM dlq.events", RAW_READER.secret);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.json.error.code, "TRB_AUTH_FORBIDDEN");
    const hidden = await sql(
      "SELECT count(*) FROM raw.events WHERE event_id IN (SELECT _event_id FROM dlq.events)",
      RAW_READER.secret,
    );
    assert.equal(hidden.status, 403, hidden.text);
    // SUMMARIZE and DESCRIBE read data or schema too: the same scopes apply.
    for (const q of [
      "SUMMARIZE dlq.events",
      "DESCRIBE dlq.events",
      "SELECT * FROM (SUMMARIZE dlq.events)",
    ]) {
      const r = await sql(q, RAW_READER.secret);
      assert.equal(r.status, 403, `${q} → ${r.text}`);
    }
  });

  it("unknown tables → 400 TRB_SERVE_SQL_UNKNOWN_TABLE; syntax errors → 400 TRB_SERVE_SQL_INVALID", async () => {
    const res = await refused("SELECT * FROM raw.evnts", 400, "TRB_SERVE_SQL_UNKNOWN_TABLE");
    assert.match(res.json.error.message, /raw\.events/, "suggests the nearest table");
    await refused("SELEC 1", 400, "TRB_SERVE_SQL_INVALID");
    await refused("", 400, "TRB_SERVE_SQL_INVALID");
  });

  it("file reads are refused: read_csv, FROM '<file>', read_parquet of a lake file, glob, read_text", async () => {
    await refused("SELECT * FROM read_csv('/etc/passwd')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT * FROM read_csv_auto('/etc/passwd')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT * FROM '/etc/passwd'", 400, [
      "TRB_SERVE_SQL_FORBIDDEN",
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
    ]);
    await refused(
      `SELECT * FROM read_parquet(${sqlString(lakeFile)})`,
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    await refused(`SELECT * FROM ${sqlString(lakeFile)}`, 400, [
      "TRB_SERVE_SQL_FORBIDDEN",
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
    ]);
    await refused(`SELECT * FROM "${lakeFile}"`, 400, [
      "TRB_SERVE_SQL_FORBIDDEN",
      "TRB_SERVE_SQL_UNKNOWN_TABLE",
    ]);
    await refused("SELECT * FROM glob('/*')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT * FROM read_text('/etc/passwd')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT * FROM read_json('/etc/passwd')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    // Hidden in a subquery, a CTE, a join or a scalar subquery.
    await refused(
      "SELECT (SELECT count(*) FROM read_csv('/etc/passwd'))",
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    await refused(
      "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x",
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    await refused(
      "SELECT * FROM raw.events, read_csv('/etc/passwd')",
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    await refused(
      "SELECT * FROM raw.events UNION ALL SELECT * FROM read_csv('/etc/passwd')",
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
  });

  it("settings and environment are not readable", async () => {
    await refused("SELECT getenv('HOME')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT current_setting('allowed_directories')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT * FROM duckdb_settings()", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT * FROM duckdb_views()", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT * FROM query('SELECT 1')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    // SHOW lists every table, past the per-dataset scopes.
    await refused("SHOW ALL TABLES", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SHOW TABLES", 400, "TRB_SERVE_SQL_FORBIDDEN");
  });

  it("COPY, ATTACH, INSTALL/LOAD, DDL, DML, SET and PRAGMA are refused, and change nothing", async () => {
    const out = join(t.dir, "exfil.csv");
    await refused(
      `COPY (SELECT * FROM raw.events) TO ${sqlString(out)}`,
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    await refused(
      `COPY raw.events TO ${sqlString(join(t.pipeline.lakeDir, "x.csv"))}`,
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(join(t.pipeline.lakeDir, "x.csv")), false);
    await refused(`ATTACH ${sqlString(join(t.dir, "x.db"))} AS x`, 400, "TRB_SERVE_SQL_FORBIDDEN");
    assert.equal(existsSync(join(t.dir, "x.db")), false);
    await refused("INSTALL httpfs", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("LOAD httpfs", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("CREATE TABLE t AS SELECT 1", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused(
      "CREATE OR REPLACE VIEW raw.events AS SELECT 1 AS x",
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    await refused("DROP VIEW raw.events", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("INSERT INTO raw.events (event_id) VALUES ('x')", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("DELETE FROM raw.events", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("UPDATE raw.events SET user_id = 'x'", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SET enable_external_access = true", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SET memory_limit = '100GB'", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("RESET lock_configuration", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("PRAGMA database_list", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("CALL pragma_version()", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("EXPORT DATABASE '/tmp/trb-export'", 400, "TRB_SERVE_SQL_FORBIDDEN");
    // The data is untouched.
    const res = await t.query("SELECT count(*) FROM raw.events");
    assert.deepEqual(res.rows, [[sent.length]]);
  });

  it("multiple statements are refused, even when each is a SELECT", async () => {
    await refused("SELECT 1; SELECT 2", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused("SELECT 1; DROP VIEW raw.events", 400, "TRB_SERVE_SQL_FORBIDDEN");
    await refused(
      `SELECT 1; COPY (SELECT 1) TO ${sqlString(join(t.dir, "y.csv"))}`,
      400,
      "TRB_SERVE_SQL_FORBIDDEN",
    );
    assert.equal(existsSync(join(t.dir, "y.csv")), false);
  });

  it("huge results → 413 TRB_SERVE_RESULT_TOO_LARGE; max_rows itself is fine", async () => {
    await refused("SELECT * FROM range(10000000)", 413, "TRB_SERVE_RESULT_TOO_LARGE");
    await refused(`SELECT * FROM range(${MAX_ROWS + 1})`, 413, "TRB_SERVE_RESULT_TOO_LARGE");
    const res = await t.query(`SELECT * FROM range(${MAX_ROWS})`);
    assert.equal(res.rows.length, MAX_ROWS);
  });

  it("a slow query hits the time limit → 408 TRB_SERVE_QUERY_TIMEOUT, and the server stays usable", async () => {
    const started = Date.now();
    await refused(
      "SELECT count(*), sum(a.range * b.range) FROM range(1000000000) a CROSS JOIN range(1000000000) b",
      408,
      "TRB_SERVE_QUERY_TIMEOUT",
    );
    const took = Date.now() - started;
    assert.ok(took >= TIMEOUT_MS, `answered after ${took} ms, before the ${TIMEOUT_MS} ms limit`);
    assert.ok(took < TIMEOUT_MS + 10_000, `the interrupt took ${took} ms`);
    const res = await t.query("SELECT count(*) FROM raw.events");
    assert.deepEqual(res.rows, [[sent.length]]);
  });
});
