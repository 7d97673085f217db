// Bad input at the HTTP API: every case gets its status and `{error:{code,message}}`; overload loses nothing acked.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import {
  KEYS,
  defaultConfig,
  merge,
  postConcurrently,
  request,
  startTestNode,
  type HttpResult,
  type TestNode,
} from "./harness.js";

/** Limits of the test server, small enough to hit. */
const BODY_LIMIT = 2048;
const MAX_EVENTS = 5;
const MAX_INFLIGHT = 1024;

/** Asserts the status and the coded error body every failure has. */
function assertError(res: HttpResult, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.json?.error?.code, code, res.text);
  assert.equal(typeof res.json.error.message, "string");
  assert.ok(res.json.error.message.length > 0);
}

const run = randomUUID().slice(0, 8);
let seq = 0;
const event = (): Record<string, unknown> => ({
  event_id: `${run}-${++seq}`,
  user_id: "u",
  amount: seq,
});
const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });
const basic = (user: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${user}:`).toString("base64")}`,
});

describe("bad input at the HTTP API", () => {
  let t: TestNode;

  before(async () => {
    t = await startTestNode(
      merge(defaultConfig(), {
        server: {
          body_limit: `${BODY_LIMIT}B`,
          max_events_per_request: MAX_EVENTS,
          max_inflight: `${MAX_INFLIGHT}B`,
        },
      }),
    );
  });
  after(async () => {
    await t?.close();
  });

  it("malformed JSON body → 400 TRB_COLLECT_BODY_MALFORMED", async () => {
    assertError(
      await t.send("events", '[{"event_id": "a", "user_id": '),
      400,
      "TRB_COLLECT_BODY_MALFORMED",
    );
    assertError(await t.send("events", "hello"), 400, "TRB_COLLECT_BODY_MALFORMED");
    assertError(await t.send("events", ""), 400, "TRB_COLLECT_BODY_MALFORMED");
  });

  it("nothing of a rejected body is stored", async () => {
    const good = event();
    // A whole JSON body that does not parse is refused whole, even if it starts with a good event.
    assertError(
      await t.send("events", `[${JSON.stringify(good)}, {"event_id": `),
      400,
      "TRB_COLLECT_BODY_MALFORMED",
    );
    await t.flush();
    const res = await t.query(
      `SELECT count(*) FROM raw.events WHERE event_id = '${String(good.event_id)}'`,
    );
    assert.deepEqual(res.rows, [[0]]);
  });

  it("unknown stream → 404 TRB_COLLECT_STREAM_NOT_FOUND", async () => {
    assertError(await t.send("nope", [event()]), 404, "TRB_COLLECT_STREAM_NOT_FOUND");
  });

  it("unknown route → 404 TRB_HTTP_NOT_FOUND", async () => {
    assertError(await t.post("/v1/nothing", "{}"), 404, "TRB_HTTP_NOT_FOUND");
  });

  it("missing key → 401 TRB_AUTH_MISSING; wrong secret → 401 TRB_AUTH_INVALID", async () => {
    assertError(await t.post("/v1/streams/events/events", [event()]), 401, "TRB_AUTH_MISSING");
    assertError(
      await t.post("/v1/streams/events/events", [event()], bearer("not-a-key-at-all")),
      401,
      "TRB_AUTH_INVALID",
    );
    assertError(await t.post("/v1/query", { sql: "SELECT 1" }), 401, "TRB_AUTH_MISSING");
    assertError(
      await t.post("/v1/query", { sql: "SELECT 1" }, bearer("not-a-key-at-all")),
      401,
      "TRB_AUTH_INVALID",
    );
    assertError(await t.post("/v1/flush", "", bearer("not-a-key-at-all")), 401, "TRB_AUTH_INVALID");
  });

  it("read key writing → 403; write key querying → 403; non-admin flushing → 403", async () => {
    assertError(
      await t.post("/v1/streams/events/events", [event()], bearer(KEYS.reader.secret)),
      403,
      "TRB_AUTH_FORBIDDEN",
    );
    assertError(
      await t.post(
        "/v1/query",
        { sql: "SELECT count(*) FROM raw.events" },
        bearer(KEYS.writer.secret),
      ),
      403,
      "TRB_AUTH_FORBIDDEN",
    );
    // A write key may be public (Segment keys ship in web pages): it must not run SQL at all.
    assertError(
      await t.post("/v1/query", { sql: "SELECT 42" }, bearer(KEYS.writer.secret)),
      403,
      "TRB_AUTH_FORBIDDEN",
    );
    assertError(
      await t.post("/v1/flush", "", bearer(KEYS.writer.secret)),
      403,
      "TRB_AUTH_FORBIDDEN",
    );
    // A key may write only to the streams it names.
    assertError(
      await t.post("/v1/streams/events/events", [event()], bearer(KEYS.segment.secret)),
      403,
      "TRB_AUTH_FORBIDDEN",
    );
  });

  it("oversize body → 413 TRB_HTTP_BODY_TOO_LARGE", async () => {
    const big = [{ ...event(), pad: "x".repeat(BODY_LIMIT) }];
    assertError(await t.send("events", big), 413, "TRB_HTTP_BODY_TOO_LARGE");
  });

  it("too many events in one request → 413 TRB_COLLECT_TOO_MANY_EVENTS", async () => {
    const many = Array.from({ length: MAX_EVENTS + 1 }, () => ({
      event_id: `${run}-m${++seq}`,
      user_id: "u",
    }));
    assert.ok(
      JSON.stringify(many).length < BODY_LIMIT,
      "test bug: the body must fit the body limit",
    );
    assertError(await t.send("events", many), 413, "TRB_COLLECT_TOO_MANY_EVENTS");
    const fine = await t.send("events", many.slice(0, MAX_EVENTS));
    assert.equal(fine.status, 200, fine.text);
  });

  it("Kinesis signed with a wrong secret → the SDK throws InvalidSignatureException", async () => {
    const kinesis = new KinesisClient({
      endpoint: t.url,
      region: "us-east-1",
      credentials: { accessKeyId: KEYS.writer.id, secretAccessKey: "wrong-secret-0000" },
      maxAttempts: 1,
    });
    try {
      const put = new PutRecordsCommand({
        StreamName: "events",
        Records: [{ Data: Buffer.from(JSON.stringify(event())), PartitionKey: "p" }],
      });
      await assert.rejects(
        kinesis.send(put),
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(e.name, "InvalidSignatureException");
          assert.equal(e.$metadata?.httpStatusCode, 403);
          return true;
        },
      );
    } finally {
      kinesis.destroy();
    }
    const unknownId = new KinesisClient({
      endpoint: t.url,
      region: "us-east-1",
      credentials: { accessKeyId: "AKIDUNKNOWN", secretAccessKey: KEYS.writer.secret },
      maxAttempts: 1,
    });
    try {
      const put = new PutRecordsCommand({
        StreamName: "events",
        Records: [{ Data: Buffer.from("{}"), PartitionKey: "p" }],
      });
      await assert.rejects(unknownId.send(put), { name: "UnrecognizedClientException" });
      const noStream = new KinesisClient({
        endpoint: t.url,
        region: "us-east-1",
        credentials: { accessKeyId: KEYS.writer.id, secretAccessKey: KEYS.writer.secret },
        maxAttempts: 1,
      });
      try {
        const put2 = new PutRecordsCommand({
          StreamName: "nope",
          Records: [{ Data: Buffer.from("{}"), PartitionKey: "p" }],
        });
        await assert.rejects(noStream.send(put2), { name: "ResourceNotFoundException" });
      } finally {
        noStream.destroy();
      }
    } finally {
      unknownId.destroy();
    }
  });

  it("unknown X-Amz-Target → 400 TRB_COLLECT_UNKNOWN_OPERATION", async () => {
    const res = await request(
      `${t.url}/`,
      { StreamName: "events" },
      {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "Kinesis_20131202.DeleteStream",
      },
    );
    assertError(res, 400, "TRB_COLLECT_UNKNOWN_OPERATION");
    assert.equal(res.json.__type, "UnknownOperationException");
  });

  it("Segment call with a key that has no segment_stream → 403 TRB_COLLECT_SEGMENT_UNBOUND", async () => {
    const call = { userId: "u1", event: "Clicked", messageId: `${run}-seg` };
    assertError(
      await t.post("/v1/track", call, basic(KEYS.writer.secret)),
      403,
      "TRB_COLLECT_SEGMENT_UNBOUND",
    );
    assertError(await t.post("/v1/track", call), 401, "TRB_AUTH_MISSING");
    assertError(
      await t.post("/v1/track", call, basic("no-such-write-key")),
      401,
      "TRB_AUTH_INVALID",
    );
    const ok = await t.post("/v1/track", call, basic(KEYS.segment.secret));
    assert.equal(ok.status, 200, ok.text);
    assertError(
      await t.post("/v1/batch", { batch: "nope" }, basic(KEYS.segment.secret)),
      400,
      "TRB_COLLECT_BODY_MALFORMED",
    );
  });

  it("overload → 503 with Retry-After; every acknowledged event is stored, nothing refused is", async () => {
    // Each request carries more than half the in-flight limit, so two at once exceed it.
    const bodies: Record<string, unknown>[][] = Array.from({ length: 60 }, () =>
      Array.from({ length: MAX_EVENTS }, () => ({ ...event(), pad: "p".repeat(60) })),
    );
    const one = JSON.stringify(bodies[0]);
    assert.ok(
      one.length < BODY_LIMIT && one.length * 2 > MAX_INFLIGHT,
      "test bug: request size must straddle the limit",
    );
    const headers = { "content-type": "application/json", ...bearer(KEYS.writer.secret) };
    const results = await postConcurrently(
      t.url,
      bodies.map((b) => ({ path: "/v1/streams/events/events", body: JSON.stringify(b), headers })),
    );
    const acked: string[] = [];
    const refused: Record<string, unknown>[][] = [];
    results.forEach((res, i) => {
      if (res.status === 200) {
        assert.equal(JSON.parse(res.text).accepted, MAX_EVENTS, res.text);
        for (const e of bodies[i]!) acked.push(String(e.event_id));
      } else {
        assert.equal(res.status, 503, res.text);
        const code = (JSON.parse(res.text) as { error: { code: string } }).error.code;
        assert.ok(["TRB_COLLECT_OVERLOADED", "TRB_HTTP_OVERLOADED"].includes(code), res.text);
        const retryAfter = Number(res.retryAfter);
        assert.ok(Number.isFinite(retryAfter) && retryAfter > 0, `Retry-After: ${res.retryAfter}`);
        refused.push(bodies[i]!);
      }
    });
    assert.ok(
      refused.length > 0,
      "60 concurrent requests over a 1 KiB in-flight limit must see at least one 503",
    );
    assert.ok(acked.length > 0, "some requests must get through");

    await t.flush();
    const stored = async (): Promise<Set<string>> => {
      const ids = [...acked, ...refused.flat().map((e) => String(e.event_id))];
      const list = ids.map((id) => `'${id}'`).join(", ");
      const res = await t.query(`SELECT event_id FROM raw.events WHERE event_id IN (${list})`);
      return new Set(res.rows.map((r) => String(r[0])));
    };
    const first = await stored();
    for (const id of acked) assert.ok(first.has(id), `acknowledged event ${id} is missing`);
    assert.equal(first.size, acked.length, "a refused request stored nothing");

    // A client that honours Retry-After gets the rest in, one request at a time.
    for (const body of refused) {
      const res = await t.send("events", body);
      assert.equal(res.status, 200, res.text);
      for (const e of body) acked.push(String(e.event_id));
    }
    await t.flush();
    const all = await stored();
    assert.equal(all.size, acked.length);
  });
});
