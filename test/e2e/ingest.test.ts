// Ingest end to end: real AWS, Segment and plain HTTP clients → stream → lake, checked with DuckDB.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  FirehoseClient,
  PutRecordBatchCommand,
  PutRecordCommand as FirehosePutRecordCommand,
} from "@aws-sdk/client-firehose";
import { KinesisClient, PutRecordCommand, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { Analytics } from "@segment/analytics-node";
import { KEYS, duckdb, records, sqlString, startTestNode, type TestNode } from "./harness.js";

/** An event of the `events` stream as a client sends it. */
interface Sent {
  event_id: string;
  ts: string;
  user_id: string;
  amount: number;
  price: number;
  ok: boolean;
  tags: unknown;
  /** An undeclared field: must survive in `_extra`. */
  note?: string;
}

const run = randomUUID().slice(0, 8);
let seq = 0;
/** A fresh, distinct event; values vary with the sequence so a mix-up between events shows. */
function makeEvent(channel: string): Sent {
  const n = ++seq;
  return {
    event_id: `${run}-${channel}-${n}`,
    ts: new Date(Date.UTC(2024, 0, 1 + (n % 3), n % 24, n % 60, 0, n % 1000)).toISOString(),
    user_id: `user-${n % 7}`,
    amount: n * 1000 + 7,
    price: n / 8,
    ok: n % 2 === 0,
    tags: { channel, n, list: [n, `x${n}`] },
    ...(n % 3 === 0 ? { note: `note-${n}` } : {}),
  };
}

const bytes = (v: unknown): Uint8Array =>
  new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const credentials = { accessKeyId: KEYS.writer.id, secretAccessKey: KEYS.writer.secret };

describe("ingest through every client into the lake", () => {
  let t: TestNode;
  /** Every valid event acknowledged as stored, by event id. */
  const sent = new Map<string, Sent>();
  const remember = (events: readonly Sent[]): void => {
    for (const e of events) {
      assert.ok(!sent.has(e.event_id), `test bug: ${e.event_id} sent twice`);
      sent.set(e.event_id, e);
    }
  };

  before(async () => {
    t = await startTestNode();
  });
  after(async () => {
    await t?.close();
  });

  it("Kinesis PutRecords and PutRecord (the AWS SDK, SigV4)", async () => {
    const kinesis = new KinesisClient({
      endpoint: t.url,
      region: "us-east-1",
      credentials,
      maxAttempts: 1,
    });
    try {
      const batch = Array.from({ length: 25 }, () => makeEvent("kds"));
      const out = await kinesis.send(
        new PutRecordsCommand({
          StreamName: "events",
          Records: batch.map((e) => ({ Data: bytes(e), PartitionKey: e.user_id })),
        }),
      );
      assert.equal(out.FailedRecordCount, 0);
      assert.equal(out.Records?.length, batch.length);
      for (const r of out.Records ?? []) assert.match(r.SequenceNumber ?? "", /^\d+$/);
      remember(batch);

      const one = makeEvent("kds1");
      const single = await kinesis.send(
        new PutRecordCommand({ StreamName: "events", Data: bytes(one), PartitionKey: "p" }),
      );
      assert.match(single.SequenceNumber ?? "", /^\d+$/);
      assert.ok(single.ShardId);
      remember([one]);
    } finally {
      kinesis.destroy();
    }
  });

  it("Firehose PutRecordBatch and PutRecord (the AWS SDK, SigV4)", async () => {
    const firehose = new FirehoseClient({
      endpoint: t.url,
      region: "us-east-1",
      credentials,
      maxAttempts: 1,
    });
    try {
      const batch = Array.from({ length: 20 }, () => makeEvent("fh"));
      const out = await firehose.send(
        new PutRecordBatchCommand({
          DeliveryStreamName: "events",
          Records: batch.map((e) => ({ Data: bytes(e) })),
        }),
      );
      assert.equal(out.FailedPutCount, 0);
      assert.equal(out.RequestResponses?.length, batch.length);
      assert.deepEqual(
        out.RequestResponses?.map((r) => r.RecordId),
        batch.map((e) => e.event_id),
      );
      remember(batch);

      const one = makeEvent("fh1");
      const single = await firehose.send(
        new FirehosePutRecordCommand({
          DeliveryStreamName: "events",
          Record: { Data: bytes(one) },
        }),
      );
      assert.equal(single.RecordId, one.event_id);
      remember([one]);
    } finally {
      firehose.destroy();
    }
  });

  it("native endpoint: a JSON array and NDJSON", async () => {
    const array = Array.from({ length: 30 }, () => makeEvent("json"));
    const a = await t.send("events", array);
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(a.json, {
      accepted: array.length,
      duplicates: 0,
      dead_lettered: 0,
      dead_letters: [],
    });
    remember(array);

    const lines = Array.from({ length: 15 }, () => makeEvent("ndjson"));
    const body = lines.map((e) => JSON.stringify(e)).join("\n") + "\n";
    const n = await t.send("events", body, { "content-type": "application/x-ndjson" });
    assert.equal(n.status, 200, n.text);
    assert.deepEqual(n.json, {
      accepted: lines.length,
      duplicates: 0,
      dead_lettered: 0,
      dead_letters: [],
    });
    remember(lines);
  });

  it("a retried batch (same ids) is stored once", async () => {
    const batch = Array.from({ length: 10 }, () => makeEvent("retry"));
    const first = await t.send("events", batch);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.accepted, batch.length);
    remember(batch);
    const again = await t.send("events", batch);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.accepted, 0);
    assert.equal(again.json.duplicates, batch.length);
    // The same ids through another endpoint are duplicates too.
    const kinesis = new KinesisClient({
      endpoint: t.url,
      region: "us-east-1",
      credentials,
      maxAttempts: 1,
    });
    try {
      await kinesis.send(
        new PutRecordsCommand({
          StreamName: "events",
          Records: batch.slice(0, 3).map((e) => ({ Data: bytes(e), PartitionKey: "p" })),
        }),
      );
    } finally {
      kinesis.destroy();
    }
  });

  /** Segment calls acknowledged by the client library. */
  const segmentCalls: {
    type: string;
    userId: string;
    event?: string;
    name?: string;
    properties?: unknown;
    traits?: unknown;
  }[] = [];

  it("Segment: @segment/analytics-node track, identify and page", async () => {
    const analytics = new Analytics({
      writeKey: KEYS.segment.secret,
      host: t.url,
      flushAt: 4,
      flushInterval: 100,
      maxRetries: 3,
    });
    const failures: unknown[] = [];
    analytics.on("error", (e) => failures.push(e));
    for (let i = 0; i < 5; i++) {
      const userId = `${run}-seg-user-${i}`;
      const properties = { plan: i % 2 === 0 ? "pro" : "free", seats: i + 1, nested: { i } };
      analytics.track({ userId, event: `Signed Up ${i}`, properties });
      segmentCalls.push({ type: "track", userId, event: `Signed Up ${i}`, properties });
      const traits = { email: `u${i}@example.com`, age: 20 + i };
      analytics.identify({ userId, traits });
      segmentCalls.push({ type: "identify", userId, traits });
      const pageProps = { path: `/p/${i}`, title: `Page ${i}` };
      analytics.page({ userId, name: `Home ${i}`, properties: pageProps });
      segmentCalls.push({ type: "page", userId, name: `Home ${i}`, properties: pageProps });
    }
    await analytics.closeAndFlush({ timeout: 10_000 });
    assert.deepEqual(failures, []);
  });

  /** Invalid events sent, with what `_raw` must hold and a pattern of the reason. */
  const invalid: { raw: string; reason: RegExp }[] = [];

  it("invalid events are dead-lettered with index and reason, the valid ones in the same request stored", async () => {
    const good1 = makeEvent("mixed");
    const good2 = makeEvent("mixed");
    const wrongType = { ...makeEvent("bad"), amount: "many" };
    const { user_id: _dropped, ...missing } = makeEvent("bad");
    const notObject = 42;
    const body = [good1, wrongType, missing, notObject, good2];
    const res = await t.send("events", body);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.accepted, 2);
    assert.equal(res.json.dead_lettered, 3);
    const dead = res.json.dead_letters as { index: number; id: string; reason: string }[];
    assert.deepEqual(
      dead.map((d) => d.index),
      [1, 2, 3],
    );
    assert.match(dead[0]!.reason, /amount/);
    assert.match(dead[1]!.reason, /user_id.*required/);
    assert.match(dead[2]!.reason, /not a JSON object/);
    for (const d of dead) assert.ok(d.id.length > 0);
    remember([good1, good2]);
    invalid.push(
      { raw: JSON.stringify(wrongType), reason: /amount/ },
      { raw: JSON.stringify(missing), reason: /user_id/ },
      { raw: "42", reason: /not a JSON object/ },
    );

    // NDJSON: a line that does not parse is dead-lettered with its bytes; the others are stored.
    const ok = makeEvent("ndjson-mixed");
    const broken = `{"event_id": "${run}-broken", "user_id": `;
    const nd = await t.send("events", `${JSON.stringify(ok)}\n${broken}\n`, {
      "content-type": "application/x-ndjson",
    });
    assert.equal(nd.status, 200, nd.text);
    assert.equal(nd.json.accepted, 1);
    assert.equal(nd.json.dead_letters.length, 1);
    assert.equal(nd.json.dead_letters[0].index, 1);
    assert.match(nd.json.dead_letters[0].reason, /malformed JSON/);
    remember([ok]);
    invalid.push({ raw: broken, reason: /malformed JSON/ });

    // Kinesis: Data that is not JSON is dead-lettered, and the SDK call still succeeds.
    const kinesis = new KinesisClient({
      endpoint: t.url,
      region: "us-east-1",
      credentials,
      maxAttempts: 1,
    });
    try {
      const fine = makeEvent("kds-mixed");
      const garbage = `not json ${run}`;
      const out = await kinesis.send(
        new PutRecordsCommand({
          StreamName: "events",
          Records: [
            { Data: bytes(fine), PartitionKey: "p" },
            { Data: bytes(garbage), PartitionKey: "p" },
          ],
        }),
      );
      assert.equal(out.Records?.length, 2);
      remember([fine]);
      invalid.push({ raw: garbage, reason: /not JSON/ });
    } finally {
      kinesis.destroy();
    }
  });

  it("after a flush every event is in raw.events exactly once, with its values", async () => {
    await t.flush();
    const ids = [...sent.keys()];
    const dupes = await t.query(
      "SELECT _event_id, count(*) AS n FROM raw.events GROUP BY _event_id HAVING count(*) > 1",
    );
    assert.deepEqual(dupes.rows, []);
    const result = await t.query(
      `SELECT _event_id, event_id, epoch_ms(ts) AS ts_ms, epoch_ms(_event_time) AS time_ms, user_id, amount, price, ok,
              tags::VARCHAR AS tags, _extra::VARCHAR AS extra
       FROM raw.events ORDER BY event_id`,
    );
    const types = Object.fromEntries(result.columns.map((c) => [c.name, c.type]));
    assert.equal(types.amount, "BIGINT");
    assert.equal(types.price, "DOUBLE");
    assert.equal(types.ok, "BOOLEAN");
    const got = records(result);
    assert.deepEqual(
      got.map((r) => r.event_id),
      [...ids].sort(),
    );
    for (const row of got) {
      const e = sent.get(String(row.event_id))!;
      const where = `event ${e.event_id}`;
      assert.equal(row._event_id, e.event_id, where);
      assert.equal(row.ts_ms, Date.parse(e.ts), where);
      assert.equal(
        row.time_ms,
        Date.parse(e.ts),
        `${where}: event time is the declared time field`,
      );
      assert.equal(row.user_id, e.user_id, where);
      assert.equal(row.amount, e.amount, where);
      assert.equal(typeof row.amount, "number", `${where}: BIGINT comes back as a JSON number`);
      assert.equal(row.price, e.price, where);
      assert.equal(row.ok, e.ok, where);
      assert.deepEqual(JSON.parse(String(row.tags)), e.tags, where);
      if (e.note === undefined) assert.equal(row.extra, null, where);
      else assert.deepEqual(JSON.parse(String(row.extra)), { note: e.note }, where);
    }
  });

  it("Segment calls are in raw.web with user_id, event and properties", async () => {
    const result = await t.query(
      `SELECT type, event, name, user_id, properties::VARCHAR AS properties, traits::VARCHAR AS traits, context::VARCHAR AS context
       FROM raw.web WHERE user_id LIKE ${sqlString(`${run}-seg-user-%`)}`,
    );
    const got = records(result);
    assert.equal(got.length, segmentCalls.length);
    const key = (c: Record<string, unknown>): string =>
      `${String(c.type)}|${String(c.user_id ?? c.userId)}`;
    const byKey = new Map(got.map((r) => [key(r), r]));
    assert.equal(byKey.size, got.length, "one row per call");
    for (const call of segmentCalls) {
      const row = byKey.get(key(call));
      assert.ok(row, `missing ${key(call)}`);
      assert.equal(row.event, call.event ?? null);
      assert.equal(row.name, call.name ?? null);
      if (call.properties !== undefined)
        assert.deepEqual(JSON.parse(String(row.properties)), call.properties);
      if (call.traits !== undefined) assert.deepEqual(JSON.parse(String(row.traits)), call.traits);
      // The library adds its context (library name and version): kept, not dropped.
      assert.match(String(row.context), /analytics-node/);
    }
  });

  it("invalid events are in dlq.events with _reason and _raw", async () => {
    const result = await t.query("SELECT _event_id, _reason, _raw FROM dlq.events");
    const got = records(result);
    assert.equal(got.length, invalid.length);
    for (const bad of invalid) {
      const match = got.filter((r) => r._raw === bad.raw);
      assert.equal(match.length, 1, `dead letter with _raw ${bad.raw}`);
      assert.match(String(match[0]!._reason), bad.reason);
    }
  });

  it("the lake folder is readable without Tributary", async () => {
    const lake = t.pipeline.lakeDir;
    const glob = (layer: string, stream: string): string =>
      sqlString(join(lake, layer, stream, "**", "*.parquet"));
    const [[events]] = (await duckdb(
      `SELECT count(*)::INTEGER FROM read_parquet(${glob("raw", "events")}, hive_partitioning = true)`,
    )) as [[number]];
    assert.equal(events, sent.size);
    const [[distinct]] = (await duckdb(
      `SELECT count(DISTINCT event_id)::INTEGER FROM read_parquet(${glob("raw", "events")}, hive_partitioning = true)`,
    )) as [[number]];
    assert.equal(distinct, sent.size);
    const [[web]] = (await duckdb(
      `SELECT count(*)::INTEGER FROM read_parquet(${glob("raw", "web")}, hive_partitioning = true)`,
    )) as [[number]];
    assert.equal(web, segmentCalls.length);
    const [[dlq]] = (await duckdb(
      `SELECT count(*)::INTEGER FROM read_parquet(${glob("dlq", "events")}, hive_partitioning = true)`,
    )) as [[number]];
    assert.equal(dlq, invalid.length);
    // Hive partitions follow the event time.
    const mismatched = await duckdb(
      `SELECT event_id FROM read_parquet(${glob("raw", "events")}, hive_partitioning = true)
       WHERE dt::DATE <> _event_time::DATE OR hour::INTEGER <> hour(_event_time)`,
    );
    assert.deepEqual(mismatched, []);
  });
});
