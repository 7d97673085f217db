// Tests of the value hash: JavaScript's MD5 equals node:crypto, and hashValue equals DuckDB's hashSql.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  BIGINT,
  BOOLEAN,
  DuckDBInstance,
  LIST,
  listValue,
  VARCHAR,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from "@duckdb/node-api";
import fc from "fast-check";
import { canonicalText, hashSql, hashValue, hashValueParts, type HashType } from "./hash.js";

const md5Lower = (text: string): bigint =>
  createHash("md5").update(text, "utf8").digest().readBigUInt64LE(8);

/** Strings of every kind: ASCII, any code point, graphemes, lone surrogates, long ones. */
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
  fc.string({ minLength: 50, maxLength: 1500 }),
  fc.string({ unit: "binary", minLength: 300, maxLength: 1100 }),
);

describe("hashValue", () => {
  test("'SFO' hashes as DuckDB's md5_number_lower('SFO')", () => {
    assert.equal(hashValue("SFO"), 15447003248321515632n);
  });

  test("the JavaScript MD5 equals node:crypto on any text, at every padding boundary", () => {
    for (let len = 0; len <= 200; len++) {
      for (const ch of ["a", "é", "✈", "😀"]) {
        const s = ch.repeat(len);
        assert.equal(hashValue(s), md5Lower(s), `${ch} x ${len}`);
      }
    }
    fc.assert(
      fc.property(anyString, (s) => hashValue(s) === md5Lower(s)),
      { numRuns: 2000 },
    );
  });

  test("canonical texts: decimal integers, true/false, strings as they are", () => {
    assert.equal(canonicalText(-0), "0");
    assert.equal(canonicalText(-42), "-42");
    assert.equal(canonicalText(2 ** 53 - 1), "9007199254740991");
    assert.equal(canonicalText(-(2n ** 100n)), "-1267650600228229401496703205376");
    assert.equal(canonicalText(true), "true");
    assert.equal(canonicalText(false), "false");
    assert.equal(canonicalText(" x "), " x ");
    assert.equal(hashValue(7), hashValue(7n));
    assert.equal(hashValue(7), hashValue("7"), "an integer hashes as its decimal text");
  });

  test("anything but strings, integers and booleans is refused", () => {
    assert.throws(() => hashValue(1.5), RangeError);
    assert.throws(() => hashValue(Number.NaN), RangeError);
    assert.throws(() => hashValue(2 ** 53), /bigint or a string/);
    for (const v of [null, undefined, {}, [], Symbol("x")])
      assert.throws(() => hashValue(v as never), TypeError);
    assert.throws(() => hashSql("x", "number" as HashType), TypeError);
  });

  test("hashValueParts writes the halves of hashValue", () => {
    const out = new Uint32Array(2);
    fc.assert(
      fc.property(fc.oneof(anyString, fc.bigInt(), fc.boolean()), (v) => {
        hashValueParts(v, out);
        return ((BigInt(out[1]!) << 32n) | BigInt(out[0]!)) === hashValue(v);
      }),
      { numRuns: 300 },
    );
  });
});

describe("hashSql in DuckDB", () => {
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

  /** DuckDB's hashSql of each value, bound as a list of the column type. */
  const inDuckDb = async (
    values: DuckDBValue[],
    itemType: DuckDBType,
    cast: string,
    type: HashType,
  ): Promise<bigint[]> => {
    const reader = await conn.runAndReadAll(
      `SELECT ${hashSql(`CAST(v AS ${cast})`, type)} AS h
       FROM unnest($1) WITH ORDINALITY AS t(v, i) ORDER BY i`,
      [listValue(values)],
      [LIST(itemType)],
    );
    return reader.getRowObjectsJS().map((r) => r.h as bigint);
  };

  const sample = <T>(arb: fc.Arbitrary<T>, n: number, seed: number): T[] =>
    fc.sample(arb, { numRuns: n, seed });

  test("strings: hundreds of generated ones, unicode and lone surrogates included", async () => {
    const values = [...sample(anyString, 600, 1), "", "SFO", "a\u0000b", "\ud800", "ÿ"];
    assert.deepEqual(await inDuckDb(values, VARCHAR, "VARCHAR", "string"), values.map(hashValue));
  });

  test("integers: negative, beyond 2^53 as bigint, the BIGINT extremes", async () => {
    const values = [
      ...sample(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), 300, 2),
      ...sample(fc.maxSafeInteger(), 200, 3).map(BigInt),
      ...sample(fc.integer({ min: -1000, max: 1000 }), 100, 4).map(BigInt),
      0n,
      -(2n ** 63n),
      2n ** 63n - 1n,
      2n ** 53n + 1n,
    ];
    assert.deepEqual(await inDuckDb(values, BIGINT, "BIGINT", "integer"), values.map(hashValue));
    // The JavaScript number of a safe integer hashes as its bigint, and so does DuckDB's INTEGER.
    const small = sample(fc.integer(), 100, 5);
    assert.deepEqual(
      await inDuckDb(small.map(BigInt), BIGINT, "INTEGER", "integer"),
      small.map((n) => hashValue(n)),
    );
  });

  test("a DOUBLE column holding whole numbers hashes as the integers", async () => {
    const values = [3, -7, 0, 2 ** 52];
    const reader = await conn.runAndReadAll(
      `SELECT ${hashSql("v", "integer")} AS h FROM unnest([3.0, -7.0, -0.0, 4503599627370496.0]::DOUBLE[]) WITH ORDINALITY t(v, i) ORDER BY i`,
    );
    assert.deepEqual(
      reader.getRowObjectsJS().map((r) => r.h),
      values.map((v) => hashValue(v)),
    );
  });

  test("booleans print true and false in DuckDB too", async () => {
    assert.deepEqual(await inDuckDb([true, false], BOOLEAN, "BOOLEAN", "boolean"), [
      hashValue(true),
      hashValue(false),
    ]);
  });

  test("NULL hashes to NULL", async () => {
    const reader = await conn.runAndReadAll(`SELECT ${hashSql("NULL::VARCHAR", "string")} AS h`);
    assert.equal(reader.getRowObjectsJS()[0]!.h, null);
  });
});
