// Tests of request body parsing: JSON array or object, NDJSON, and what becomes an error or a dead letter.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isTributaryError } from "../errors.js";
import { parseEvents } from "./body.js";
import type { IngestItem } from "./collector.js";

const LIMIT = 1024 * 1024;
const malformed = (e: unknown): boolean => isTributaryError(e, "TRB_COLLECT_BODY_MALFORMED");
const values = (items: IngestItem[]): unknown[] =>
  items.map((i) => ("value" in i ? i.value : { raw: i.raw }));

describe("parseEvents", () => {
  test("a JSON array gives one event per element", () => {
    const items = parseEvents('[{"a":1},{"b":[2]},{}]', "application/json", LIMIT);
    assert.deepEqual(values(items), [{ a: 1 }, { b: [2] }, {}]);
  });

  test("a JSON object is one event; leading whitespace and any content type are fine", () => {
    assert.deepEqual(values(parseEvents('  \n {"a":"ü"}', "application/json", LIMIT)), [
      { a: "ü" },
    ]);
    assert.deepEqual(values(parseEvents('{"a":1}', undefined, LIMIT)), [{ a: 1 }]);
    assert.deepEqual(values(parseEvents('{"a":1}', "text/plain", LIMIT)), [{ a: 1 }]);
  });

  test("elements that are not objects are passed on for normalize to reject", () => {
    assert.deepEqual(values(parseEvents('[1, "x", null, [2]]', "application/json", LIMIT)), [
      1,
      "x",
      null,
      [2],
    ]);
  });

  test("event sizes are measured only when the body exceeds the per-event limit", () => {
    const body = JSON.stringify([{ a: "x".repeat(50) }, { b: 1 }]);
    assert.deepEqual(
      parseEvents(body, "application/json", LIMIT).map((i) => ("size" in i ? i.size : -1)),
      [0, 0],
      "a body under the limit means every event is",
    );
    const sized = parseEvents(body, "application/json", 20);
    assert.deepEqual(
      sized.map((i) => ("size" in i ? i.size : -1)),
      [JSON.stringify({ a: "x".repeat(50) }).length, JSON.stringify({ b: 1 }).length],
    );
  });

  test("NDJSON gives one event per line, skipping blank lines and CRLF endings", () => {
    for (const type of [
      "application/x-ndjson",
      "application/ndjson",
      "application/jsonlines",
      "application/x-jsonl; charset=utf-8",
    ]) {
      const items = parseEvents('{"a":1}\r\n\n  \n{"b":2}\n', type, LIMIT);
      assert.deepEqual(values(items), [{ a: 1 }, { b: 2 }], type);
      assert.deepEqual(
        items.map((i) => ("size" in i ? i.size : -1)),
        [7, 7],
      );
    }
  });

  test("a malformed NDJSON line becomes a raw item with the reason; the others still parse", () => {
    const items = parseEvents('{"a":1}\n{"b":\n{"c":3}\nnot json\n', "application/x-ndjson", LIMIT);
    assert.equal(items.length, 4);
    assert.deepEqual(items[0], { value: { a: 1 }, size: 7 });
    assert.equal((items[1] as { raw: string }).raw, '{"b":');
    assert.match((items[1] as { reason: string }).reason, /^malformed JSON: /);
    assert.deepEqual(items[2], { value: { c: 3 }, size: 7 });
    assert.equal((items[3] as { raw: string }).raw, "not json");
  });

  test("objects on separate lines sent as application/json are read as NDJSON", () => {
    const items = parseEvents('{"a":1}\n{"b":2}\n{oops}', "application/json", LIMIT);
    assert.deepEqual(values(items), [{ a: 1 }, { b: 2 }, { raw: "{oops}" }]);
  });

  test("malformed JSON is TRB_COLLECT_BODY_MALFORMED and stores nothing", () => {
    for (const body of ['[{"a":1},', '{"a":', "[1,]", '["a" "b"]', '[\n{"a":1},\n']) {
      assert.throws(() => parseEvents(body, "application/json", LIMIT), malformed, body);
    }
  });

  test("bodies that are not JSON at all, or hold no events, are TRB_COLLECT_BODY_MALFORMED", () => {
    for (const body of ["", "   \n", "hello", "42", '"text"', "null"]) {
      assert.throws(
        () => parseEvents(body, "application/json", LIMIT),
        malformed,
        JSON.stringify(body),
      );
    }
    assert.throws(() => parseEvents("\n \r\n", "application/x-ndjson", LIMIT), malformed);
  });
});
