// Tests of data tests on small DuckDB tables: each kind passing and failing, per-day results, quoting.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { isTributaryError } from "../errors.js";
import { runDataTests, testName, type DataTestResult } from "./data-tests.js";
import type { DataTest } from "./plan.js";

const DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"];

describe("testName", () => {
  test("names each kind of test readably", () => {
    const names = (
      [
        { kind: "not_null", column: "origin" },
        { kind: "unique", columns: ["flight_id"] },
        { kind: "unique", columns: ["day", "origin"] },
        { kind: "accepted_values", column: "status", values: ["a"] },
        { kind: "relationships", column: "origin", to: "seed.airports", field: "iata" },
        { kind: "row_count", min: 1 },
        { kind: "row_count", max: 10 },
        { kind: "row_count", min: 1, max: 10 },
      ] satisfies DataTest[]
    ).map(testName);
    assert.deepEqual(names, [
      "not_null(origin)",
      "unique(flight_id)",
      "unique(day, origin)",
      "accepted_values(status)",
      "relationships(origin → seed.airports.iata)",
      "row_count(min 1)",
      "row_count(max 10)",
      "row_count(min 1, max 10)",
    ]);
  });
});

describe("runDataTests", () => {
  let conn: DuckDBConnection;

  before(async () => {
    const db = await DuckDBInstance.create(":memory:", { threads: "1" });
    conn = await db.connect();
    await conn.run(`
      CREATE SCHEMA seed;
      CREATE TABLE seed.airports AS SELECT * FROM (VALUES ('ORD'), ('JFK'), (NULL)) t(iata);
      CREATE TABLE flights AS SELECT * FROM (VALUES
        (DATE '2024-01-01', 'F1', 'ORD', 'on_time'),
        (DATE '2024-01-01', 'F2', NULL, 'late'),
        (DATE '2024-01-01', 'F2', 'JFK', 'XX'),
        (DATE '2024-01-02', 'F1', 'ORD', 'on_time'),
        (DATE '2024-01-02', 'F3', 'ZZZ', 'YY'),
        (DATE '2024-01-02', 'F3', NULL, 'YY'),
        (DATE '2024-01-02', 'F3', 'ZZZ', NULL),
        (DATE '2024-01-05', 'F9', 'QQQ', 'XX'),
        (DATE '2024-01-05', 'F9', NULL, 'XX')
      ) t(day, flight_id, origin, status);
      CREATE TABLE empty_flights AS SELECT * FROM flights WHERE false;
    `);
  });
  after(() => conn.closeSync());

  /** Results of one test on the `flights` table, by day, without the test name. */
  async function byDay(t: DataTest, relation = "flights") {
    const results = await runDataTests(conn, [t], relation, { partitioned: true, days: DAYS });
    assert.ok(results.every((r) => r.test === testName(t)));
    return results.map(({ day, passed, failures, message }) => ({
      day,
      passed,
      failures,
      message,
    }));
  }

  const pass = (day: string) => ({ day, passed: true, failures: 0, message: null });
  const fail = (day: string, failures: number, message: string) => ({
    day,
    passed: false,
    failures,
    message,
  });

  test("not_null counts NULL rows per day", async () => {
    assert.deepEqual(await byDay({ kind: "not_null", column: "origin" }), [
      fail("2024-01-01", 1, "1 row with origin NULL"),
      fail("2024-01-02", 1, "1 row with origin NULL"),
      pass("2024-01-03"),
    ]);
    assert.deepEqual(await byDay({ kind: "not_null", column: "flight_id" }), DAYS.map(pass));
  });

  test("unique counts the rows of duplicated keys within each day", async () => {
    // F1 occurs on two days, which is no duplicate for a partitioned model.
    assert.deepEqual(await byDay({ kind: "unique", columns: ["flight_id"] }), [
      fail("2024-01-01", 2, "2 rows share 1 value of flight_id, e.g. 'F2'"),
      fail("2024-01-02", 3, "3 rows share 1 value of flight_id, e.g. 'F3'"),
      pass("2024-01-03"),
    ]);
    assert.deepEqual(await byDay({ kind: "unique", columns: ["day", "origin"] }), [
      pass("2024-01-01"),
      fail("2024-01-02", 2, "2 rows share 1 value of (day, origin), e.g. (2024-01-02, 'ZZZ')"),
      pass("2024-01-03"),
    ]);
    assert.deepEqual(await byDay({ kind: "unique", columns: ["flight_id", "status"] }), [
      pass("2024-01-01"),
      fail("2024-01-02", 2, "2 rows share 1 value of (flight_id, status), e.g. ('F3', 'YY')"),
      pass("2024-01-03"),
    ]);
  });

  test("accepted_values counts non-null values outside the list", async () => {
    const t: DataTest = { kind: "accepted_values", column: "status", values: ["on_time", "late"] };
    assert.deepEqual(await byDay(t), [
      fail("2024-01-01", 1, "1 value of status not accepted, e.g. 'XX'"),
      fail("2024-01-02", 2, "2 values of status not accepted, e.g. 'YY'"),
      pass("2024-01-03"),
    ]);
    const all: DataTest = {
      kind: "accepted_values",
      column: "status",
      values: ["on_time", "late", "XX", "YY"],
    };
    assert.deepEqual(await byDay(all), DAYS.map(pass));
    const none: DataTest = { kind: "accepted_values", column: "status", values: [] };
    assert.deepEqual(await byDay(none), [
      fail("2024-01-01", 3, "3 values of status not accepted, e.g. 'XX', 'late', 'on_time'"),
      fail("2024-01-02", 3, "3 values of status not accepted, e.g. 'YY', 'on_time'"),
      pass("2024-01-03"),
    ]);
  });

  test("relationships counts non-null values with no match in the other table", async () => {
    const t: DataTest = {
      kind: "relationships",
      column: "origin",
      to: "seed.airports",
      field: "iata",
    };
    assert.deepEqual(await byDay(t), [
      pass("2024-01-01"),
      fail("2024-01-02", 2, "2 rows with origin not in seed.airports.iata, e.g. 'ZZZ'"),
      pass("2024-01-03"),
    ]);
  });

  test("row_count fails a day outside [min, max], including a day without rows", async () => {
    assert.deepEqual(await byDay({ kind: "row_count", min: 1 }), [
      pass("2024-01-01"),
      pass("2024-01-02"),
      fail("2024-01-03", 1, "0 rows, expected at least 1"),
    ]);
    assert.deepEqual(await byDay({ kind: "row_count", max: 3 }), [
      pass("2024-01-01"),
      fail("2024-01-02", 1, "4 rows, expected at most 3"),
      pass("2024-01-03"),
    ]);
    assert.deepEqual(await byDay({ kind: "row_count", min: 1, max: 3 }), [
      pass("2024-01-01"),
      fail("2024-01-02", 1, "4 rows, expected between 1 and 3"),
      fail("2024-01-03", 1, "0 rows, expected between 1 and 3"),
    ]);
  });

  test("results come per test then per day, with one query per test", async () => {
    let queries = 0;
    const counting = {
      runAndReadAll: (sql: string) => {
        queries++;
        return conn.runAndReadAll(sql);
      },
    } as unknown as DuckDBConnection;
    const tests: DataTest[] = [
      { kind: "not_null", column: "origin" },
      { kind: "row_count", min: 1 },
    ];
    const results = await runDataTests(counting, tests, "flights", {
      partitioned: true,
      days: DAYS,
    });
    assert.equal(queries, 2);
    assert.deepEqual(
      results.map((r) => `${r.test} ${r.day} ${r.passed}`),
      [
        "not_null(origin) 2024-01-01 false",
        "not_null(origin) 2024-01-02 false",
        "not_null(origin) 2024-01-03 true",
        "row_count(min 1) 2024-01-01 true",
        "row_count(min 1) 2024-01-02 true",
        "row_count(min 1) 2024-01-03 false",
      ],
    );
    assert.deepEqual(
      await runDataTests(conn, tests, "flights", { partitioned: true, days: [] }),
      [],
    );
  });

  test("rows of days not asked for are ignored", async () => {
    const results = await runDataTests(conn, [{ kind: "not_null", column: "origin" }], "flights", {
      partitioned: true,
      days: ["2024-01-04"],
    });
    assert.deepEqual(results, [
      { day: "2024-01-04", test: "not_null(origin)", passed: true, failures: 0, message: null },
    ]);
  });

  test("a full-refresh model gets one result per test with day *", async () => {
    const tests: DataTest[] = [
      { kind: "unique", columns: ["flight_id"] },
      { kind: "not_null", column: "flight_id" },
      { kind: "accepted_values", column: "status", values: ["on_time", "late", "XX"] },
      { kind: "row_count", min: 1, max: 9 },
    ];
    const results = await runDataTests(conn, tests, "flights", { partitioned: false, days: DAYS });
    assert.deepEqual(results, [
      {
        day: "*",
        test: "unique(flight_id)",
        passed: false,
        failures: 9,
        message: "9 rows share 4 values of flight_id, e.g. 'F1', 'F2', 'F3'",
      },
      { day: "*", test: "not_null(flight_id)", passed: true, failures: 0, message: null },
      {
        day: "*",
        test: "accepted_values(status)",
        passed: false,
        failures: 2,
        message: "2 values of status not accepted, e.g. 'YY'",
      },
      { day: "*", test: "row_count(min 1, max 9)", passed: true, failures: 0, message: null },
    ] satisfies DataTestResult[]);
    const empty = await runDataTests(conn, tests, "empty_flights", {
      partitioned: false,
      days: [],
    });
    assert.deepEqual(
      empty.map((r) => [r.test, r.passed, r.message]),
      [
        ["unique(flight_id)", true, null],
        ["not_null(flight_id)", true, null],
        ["accepted_values(status)", true, null],
        ["row_count(min 1, max 9)", false, "0 rows, expected between 1 and 9"],
      ],
    );
  });

  test("identifiers and values with quotes are quoted; examples stay on one line", async () => {
    await conn.run(`
      CREATE TABLE "odd ""names""" AS SELECT * FROM (VALUES
        ('O''Hare', 1, true),
        ('Bob''s', 2, true),
        ('line one' || chr(10) || 'line two', 3, false),
        (repeat('x', 60), 3, NULL)
      ) t("it's ""col""", "select", ok);
    `);
    const rel = `"odd ""names"""`;
    const t: DataTest = { kind: "accepted_values", column: `it's "col"`, values: ["O'Hare"] };
    const [r] = await runDataTests(conn, [t], rel, { partitioned: false, days: [] });
    assert.equal(r!.failures, 3);
    assert.equal(
      r!.message,
      `3 values of it's "col" not accepted, e.g. 'Bob''s', 'line one\\nline two', '${"x".repeat(40)}…'`,
    );
    const numbers = await runDataTests(
      conn,
      [
        { kind: "accepted_values", column: "select", values: [1, 2] },
        { kind: "accepted_values", column: "ok", values: [true] },
        { kind: "unique", columns: ["select"] },
      ],
      rel,
      { partitioned: false, days: [] },
    );
    assert.deepEqual(
      numbers.map((x) => x.message),
      [
        "2 values of select not accepted, e.g. 3",
        "1 value of ok not accepted, e.g. false",
        "2 rows share 1 value of select, e.g. 3",
      ],
    );
    const accepted = await runDataTests(
      conn,
      [{ kind: "accepted_values", column: `it's "col"`, values: ["O'Hare", "Bob's"] }],
      `(SELECT * FROM ${rel} WHERE "select" < 3)`,
      { partitioned: false, days: [] },
    );
    assert.equal(accepted[0]!.passed, true);
  });

  test("a test that cannot run throws TRB_BATCH_TASK_FAILED naming it", async () => {
    await assert.rejects(
      runDataTests(conn, [{ kind: "not_null", column: "nope" }], "flights", {
        partitioned: true,
        days: DAYS,
      }),
      (e: unknown) =>
        isTributaryError(e, "TRB_BATCH_TASK_FAILED") &&
        e.message.startsWith("data test not_null(nope) on flights could not run: "),
    );
    await assert.rejects(
      runDataTests(conn, [{ kind: "row_count", min: 1 }], "flights", {
        partitioned: true,
        days: ["2024-1-1"],
      }),
      (e: unknown) => isTributaryError(e, "TRB_BATCH_BAD_DATE"),
    );
  });
});
