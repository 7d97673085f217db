// Tests of event normalization: field types, required fields, id and time, lossless _extra, Segment mapping.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { SEGMENT_FIELDS, type Column, type StreamPlan } from "../config/index.js";
import { normalize, toMillis, type NormalizedEvent, type RejectedEvent } from "./normalize.js";

const RECEIVED = Date.UTC(2024, 4, 6, 7, 8, 9, 10);
const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function plan(fields: Column[], over: Partial<StreamPlan> = {}): StreamPlan {
  return {
    name: "events",
    format: "json",
    fields,
    idField: undefined,
    timeField: undefined,
    partitionKey: undefined,
    dedupWindowMs: 600_000,
    dedupMaxIds: 1000,
    retainMs: 3_600_000,
    ...over,
  };
}

const col = (name: string, type: Column["type"], required = false): Column => ({
  name,
  type,
  required,
});

const TYPED = plan(
  [
    col("event_id", "string", true),
    col("ts", "timestamp"),
    col("name", "string"),
    col("count", "integer"),
    col("price", "number"),
    col("ok", "boolean"),
    col("tags", "json"),
  ],
  { idField: "event_id", timeField: "ts" },
);

function ok(
  r: NormalizedEvent | RejectedEvent,
): NormalizedEvent & { record: Record<string, unknown> } {
  assert.equal(r.ok, true, r.ok ? "" : `rejected: ${r.reason}`);
  const n = r as NormalizedEvent;
  return { ...n, record: JSON.parse(n.data) as Record<string, unknown> };
}

function rejected(r: NormalizedEvent | RejectedEvent, reason: RegExp): RejectedEvent {
  assert.equal(r.ok, false, "expected a rejection");
  const x = r as RejectedEvent;
  assert.match(x.reason, reason);
  assert.ok(x.id.length > 0, "a rejected event still has an id");
  return x;
}

describe("normalize (json streams)", () => {
  test("every field type is stored typed, with the envelope first", () => {
    const n = ok(
      normalize(
        TYPED,
        {
          event_id: "E1",
          ts: "2001-01-01T05:30:00Z",
          name: "Zoë",
          count: 42,
          price: 9.5,
          ok: false,
          tags: { a: [1, "x"] },
        },
        RECEIVED,
      ),
    );
    assert.equal(n.id, "E1");
    assert.equal(n.time, Date.UTC(2001, 0, 1, 5, 30));
    assert.deepEqual(n.record, {
      _event_id: "E1",
      _received_at: "2024-05-06T07:08:09.010Z",
      // Canonical UTC text is stored as sent (same instant, no re-formatting on the hot path).
      _event_time: "2001-01-01T05:30:00Z",
      event_id: "E1",
      ts: "2001-01-01T05:30:00Z",
      name: "Zoë",
      count: 42,
      price: 9.5,
      ok: false,
      tags: { a: [1, "x"] },
      _extra: null,
    });
    assert.deepEqual(Object.keys(n.record).slice(0, 3), [
      "_event_id",
      "_received_at",
      "_event_time",
    ]);
  });

  test("absent or null optional fields are null; json fields keep any JSON value", () => {
    const n = ok(normalize(TYPED, { event_id: "E2", name: null, tags: "just text" }, RECEIVED));
    assert.equal(n.record.name, null);
    assert.equal(n.record.count, null);
    assert.equal(n.record.ts, null);
    assert.equal(n.record.tags, "just text");
    for (const v of [0, false, [], [1, { b: null }], 1.25]) {
      assert.deepEqual(ok(normalize(TYPED, { event_id: "E", tags: v }, RECEIVED)).record.tags, v);
    }
  });

  test("values of the wrong type are rejected with the field named", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 5 }, /name must be a string/],
      [{ count: 1.5 }, /count must be an integer/],
      [{ count: "5" }, /count must be an integer/],
      [{ count: 2 ** 53 }, /count must be an integer/],
      [{ price: "9.5" }, /price must be a number/],
      [{ ok: "true" }, /ok must be true or false/],
      [{ ok: 1 }, /ok must be true or false/],
      [{ ts: "yesterday" }, /ts must be an ISO-8601 timestamp/],
      [{ ts: "0999-12-31T00:00:00Z" }, /ts must be an ISO-8601 timestamp/],
      [{ ts: true }, /ts must be an ISO-8601 timestamp/],
    ];
    for (const [fields, reason] of cases) {
      const r = rejected(normalize(TYPED, { event_id: "bad", ...fields }, RECEIVED), reason);
      assert.equal(r.id, "bad", "a rejected event keeps its given id");
    }
  });

  test("a required field must be present and not null", () => {
    const p = plan([col("user", "string", true), col("n", "integer")]);
    rejected(normalize(p, { n: 1 }, RECEIVED), /user is required/);
    rejected(normalize(p, { user: null }, RECEIVED), /user is required/);
    ok(normalize(p, { user: "" }, RECEIVED));
  });

  test("the id field gives the event id; integers become text; a bad id is rejected", () => {
    const p = plan([col("id", "json"), col("v", "integer")], { idField: "id" });
    assert.equal(ok(normalize(p, { id: "abc" }, RECEIVED)).id, "abc");
    const int = ok(normalize(p, { id: 12345 }, RECEIVED));
    assert.equal(int.id, "12345");
    assert.equal(int.record._event_id, "12345");
    for (const bad of [1.5, true, { a: 1 }, "", "x".repeat(257)]) {
      rejected(
        normalize(p, { id: bad }, RECEIVED),
        /id must be a string \(1-256 characters, no line breaks\) or an integer/,
      );
    }
  });

  test("without an id, a UUIDv7 of the received time is generated", () => {
    const a = ok(normalize(plan([]), {}, RECEIVED));
    const b = ok(normalize(plan([]), {}, RECEIVED));
    assert.match(a.id, UUIDV7);
    assert.notEqual(a.id, b.id);
    assert.equal(a.record._event_id, a.id);
    assert.equal(parseInt(a.id.replaceAll("-", "").slice(0, 12), 16), RECEIVED);
  });

  test("the time field sets the event time; without it the received time is used", () => {
    const iso = ok(normalize(TYPED, { event_id: "a", ts: "2001-01-01T01:00:00+01:00" }, RECEIVED));
    assert.equal(iso.time, Date.UTC(2001, 0, 1));
    assert.equal(iso.record._event_time, "2001-01-01T00:00:00.000Z");
    const epoch = ok(normalize(TYPED, { event_id: "b", ts: 978_307_200_123 }, RECEIVED));
    assert.equal(epoch.time, 978_307_200_123);
    assert.equal(epoch.record.ts, "2001-01-01T00:00:00.123Z");
    const none = ok(normalize(TYPED, { event_id: "c" }, RECEIVED));
    assert.equal(none.time, RECEIVED);
    assert.equal(none.record._event_time, "2024-05-06T07:08:09.010Z");
    const nul = ok(normalize(TYPED, { event_id: "d", ts: null }, RECEIVED));
    assert.equal(nul.time, RECEIVED);
    // A timestamp field that is not the time field is typed but does not move the event time.
    const other = plan([col("at", "timestamp")]);
    const n = ok(normalize(other, { at: "2001-01-01T00:00:00Z" }, RECEIVED));
    assert.equal(n.time, RECEIVED);
    assert.equal(n.record.at, "2001-01-01T00:00:00Z");
  });

  test("timestamps that Date.parse rolls over are re-formatted, never stored as sent", () => {
    const feb30 = ok(normalize(TYPED, { event_id: "f", ts: "2001-02-30T00:00:00Z" }, RECEIVED));
    assert.equal(feb30.record.ts, "2001-03-02T00:00:00.000Z");
    const t24 = ok(normalize(TYPED, { event_id: "g", ts: "2001-01-01T24:00:00Z" }, RECEIVED));
    assert.equal(t24.record.ts, "2001-01-02T00:00:00.000Z");
    const leap = ok(normalize(TYPED, { event_id: "h", ts: "2000-02-29T12:00:00.5Z" }, RECEIVED));
    assert.equal(leap.record.ts, "2000-02-29T12:00:00.5Z");
    assert.equal(leap.time, Date.UTC(2000, 1, 29, 12, 0, 0, 500));
  });

  test("_extra keeps every undeclared field, nested and unicode included", () => {
    const event = JSON.parse(
      '{"event_id":"x","count":1,"nested":{"deep":[1,{"k":"v"}],"n":null},"emoji":"✈️","big":1e300,"empty":{},"list":[],"_event_id":"spoof"}',
    ) as Record<string, unknown>;
    const n = ok(normalize(TYPED, event, RECEIVED));
    assert.equal(
      n.record._event_id,
      "x",
      "an undeclared `_event_id` does not replace the envelope",
    );
    assert.deepEqual(n.record._extra, {
      nested: { deep: [1, { k: "v" }], n: null },
      emoji: "✈️",
      big: 1e300,
      empty: {},
      list: [],
      _event_id: "spoof",
    });
  });

  test("_extra keeps a `__proto__` key as data", () => {
    const event = JSON.parse('{"event_id":"x","__proto__":{"polluted":true},"plain":1}') as Record<
      string,
      unknown
    >;
    const n = ok(normalize(TYPED, event, RECEIVED));
    assert.deepEqual(
      JSON.parse(JSON.stringify(n.record._extra)),
      JSON.parse('{"__proto__":{"polluted":true},"plain":1}'),
    );
    assert.equal(Object.keys(n.record._extra as object).length, 2);
  });

  test("property: declared fields and _extra together give back the event", () => {
    const declared = ["name", "count", "tags"];
    const p = plan([col("name", "string"), col("count", "integer"), col("tags", "json")]);
    const key = fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !declared.includes(k));
    fc.assert(
      fc.property(
        fc.record(
          {
            name: fc.option(fc.string(), { nil: undefined }),
            count: fc.option(fc.maxSafeInteger(), { nil: undefined }),
            tags: fc.option(fc.jsonValue(), { nil: undefined }),
          },
          { requiredKeys: [] },
        ),
        fc.dictionary(key, fc.jsonValue(), { maxKeys: 5 }),
        (typed, extra) => {
          const event = JSON.parse(JSON.stringify({ ...typed, ...extra })) as Record<
            string,
            unknown
          >;
          const n = ok(normalize(p, event, RECEIVED));
          const back: Record<string, unknown> = {
            ...((n.record._extra as Record<string, unknown> | null) ?? {}),
          };
          for (const d of declared) if (n.record[d] !== null) back[d] = n.record[d];
          const expected = Object.fromEntries(
            Object.entries(event).filter(([k, v]) => !(declared.includes(k) && v === null)),
          );
          assert.deepEqual(back, expected);
        },
      ),
      { numRuns: 200 },
    );
  });

  test("a value that is not a JSON object is rejected", () => {
    for (const v of [null, 1, "x", [1, 2], true])
      rejected(normalize(TYPED, v, RECEIVED), /not a JSON object/);
  });
});

describe("normalize (segment streams)", () => {
  const SEG = plan([...SEGMENT_FIELDS], {
    name: "web",
    format: "segment",
    idField: "messageId",
    timeField: "timestamp",
  });

  test("maps Segment keys to columns, messageId and timestamp to the envelope, the rest to _extra", () => {
    const n = ok(
      normalize(
        SEG,
        {
          type: "track",
          event: "Signed Up",
          userId: "u1",
          anonymousId: "a1",
          messageId: "m-1",
          timestamp: "2001-01-01T00:00:01.500Z",
          properties: { plan: "pro" },
          context: { ip: "1.2.3.4" },
          sentAt: "2001-01-01T00:00:02Z",
          integrations: { All: true },
        },
        RECEIVED,
      ),
    );
    assert.equal(n.id, "m-1");
    assert.equal(n.time, Date.UTC(2001, 0, 1, 0, 0, 1, 500));
    assert.deepEqual(n.record, {
      _event_id: "m-1",
      _received_at: "2024-05-06T07:08:09.010Z",
      _event_time: "2001-01-01T00:00:01.500Z",
      type: "track",
      event: "Signed Up",
      name: null,
      user_id: "u1",
      anonymous_id: "a1",
      properties: { plan: "pro" },
      traits: null,
      context: { ip: "1.2.3.4" },
      _extra: { sentAt: "2001-01-01T00:00:02Z", integrations: { All: true } },
    });
  });

  test("identify and page calls; no messageId gets a UUIDv7; no timestamp uses the received time", () => {
    const id = ok(
      normalize(SEG, { type: "identify", anonymousId: "a2", traits: { email: "x@y" } }, RECEIVED),
    );
    assert.match(id.id, UUIDV7);
    assert.equal(id.time, RECEIVED);
    assert.deepEqual(id.record.traits, { email: "x@y" });
    assert.equal(id.record._extra, null);
    const page = ok(
      normalize(SEG, { type: "page", userId: "u", name: "Home", messageId: 77 }, RECEIVED),
    );
    assert.equal(page.record.name, "Home");
    assert.equal(page.id, "77");
    // Keys that name Object.prototype members are data like any other.
    const text =
      '{"type":"identify","anonymousId":"a","__proto__":{"x":1},"constructor":"c","toString":2}';
    const proto = ok(normalize(SEG, JSON.parse(text), RECEIVED));
    assert.deepEqual(
      JSON.parse(JSON.stringify(proto.record._extra)),
      JSON.parse('{"__proto__":{"x":1},"constructor":"c","toString":2}'),
    );
    assert.deepEqual(
      Object.keys(proto.record).filter((k) => k.includes("function")),
      [],
    );
  });

  test("rejects calls that break the Segment spec", () => {
    const base = { userId: "u", messageId: "m" };
    rejected(normalize(SEG, { ...base, type: "bogus" }, RECEIVED), /type must be one of/);
    rejected(normalize(SEG, { ...base }, RECEIVED), /type must be one of/);
    rejected(normalize(SEG, { ...base, type: "track" }, RECEIVED), /track call needs `event`/);
    rejected(
      normalize(SEG, { type: "page", messageId: "m" }, RECEIVED),
      /needs userId or anonymousId/,
    );
    rejected(
      normalize(SEG, { ...base, type: "page", timestamp: "not a date" }, RECEIVED),
      /timestamp is not an ISO-8601 date/,
    );
    rejected(normalize(SEG, { ...base, type: "page", name: 5 }, RECEIVED), /name must be a string/);
    rejected(
      normalize(SEG, { ...base, type: "page", anonymousId: 5 }, RECEIVED),
      /anonymousId must be a string/,
    );
    const bad = rejected(
      normalize(SEG, { type: "page", userId: "u", messageId: { x: 1 } }, RECEIVED),
      /messageId/,
    );
    assert.match(bad.id, UUIDV7);
    assert.equal(rejected(normalize(SEG, { ...base, type: "bogus" }, RECEIVED), /type/).id, "m");
  });
});

describe("toMillis", () => {
  test("reads ISO-8601 dates and epoch milliseconds in years 1000..9999", () => {
    assert.equal(toMillis("2001-01-01"), Date.UTC(2001, 0, 1));
    assert.equal(toMillis("2001-01-01T05:06"), Date.UTC(2001, 0, 1, 5, 6), "no zone means UTC");
    assert.equal(
      toMillis("2001-01-01T05:06:07"),
      Date.UTC(2001, 0, 1, 5, 6, 7),
      "no zone means UTC",
    );
    assert.equal(toMillis("2001-01-01T05:06:07.890Z"), Date.UTC(2001, 0, 1, 5, 6, 7, 890));
    assert.equal(toMillis("2001-01-01T05:06:07-02:00"), Date.UTC(2001, 0, 1, 7, 6, 7));
    assert.equal(toMillis(978_307_200_000.9), 978_307_200_000);
    for (const bad of [
      "2001-13-45",
      "01/02/2001",
      "",
      "0999-01-01",
      -1e15,
      1e15,
      Number.NaN,
      null,
      {},
    ]) {
      assert.equal(toMillis(bad), undefined, String(bad));
    }
  });
});
