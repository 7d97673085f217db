// The same pipeline on the distributed lake and catalog: an S3-compatible bucket (s3rver) and
// PostgreSQL. Ingest, land, SQL, batch and views work unchanged, and survive a restart with an
// empty local cache (everything is read back from the bucket and the database).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { loadPipeline } from "../../src/config/index.js";
import { startNode, type Role, type RunningNode } from "../../src/runtime/node.js";
import { startS3rver, type TestS3 } from "../../src/backends/s3/s3rver.test-util.js";
import {
  FLIGHTS_STREAM,
  KEYS,
  createProject,
  startTestNode,
  type ConfigTree,
} from "../e2e/harness.js";
import { PG_URL, TEST_KEYS, deleteNatsStreams, dropSchemas, uniqueName } from "./support.js";

describe("distributed lake and catalog (s3rver + PostgreSQL)", () => {
  let s3: TestS3;
  const schema = uniqueName("trb_it_");
  before(async () => {
    s3 = await startS3rver("lake");
  });
  after(async () => {
    await s3.stop();
    // The catalog's, its job queue's (`_jobs`) and the roles test's (`_roles…`) schemas.
    await dropSchemas(schema);
  });

  it("ingest, land, SQL, batch and views, then a restart with an empty cache", async () => {
    const config = (cacheDir: string): ConfigTree => ({
      name: "distributed-it",
      streams: { flights: FLIGHTS_STREAM },
      keys: TEST_KEYS,
      views: {
        departures: {
          stream: "flights",
          dimensions: ["origin"],
          measures: { flights: "count", avg_delay: "avg(delay)" },
        },
      },
      backends: {
        lake: s3.lakeConfig("lake", { cache_dir: cacheDir }),
        catalog: { kind: "postgres", url: PG_URL, schema },
      },
    });
    const flights = Array.from({ length: 300 }, (_, i) => ({
      flight_id: `D${i}`,
      date: new Date(Date.UTC(2001, 0, 1 + (i % 2), 0, i)).toISOString().slice(0, 19) + "Z",
      delay: i % 40,
      distance: 300,
      origin: ["SFO", "LAX", "ORD"][i % 3]!,
      destination: "JFK",
    }));
    const admin = { authorization: `Bearer ${KEYS.admin.secret}` };
    const first = await startTestNode(config("cache-a"));
    let counts: unknown;
    try {
      assert.equal((await first.send("flights", flights)).status, 200);
      await first.flush();
      counts = (
        await first.query("SELECT origin, count(*) AS n FROM raw.flights GROUP BY ALL ORDER BY ALL")
      ).rows;
      assert.deepEqual(counts, [
        ["LAX", 100],
        ["ORD", 100],
        ["SFO", 100],
      ]);
      const run = await first.post(
        "/v1/batch/runs",
        { mode: "backfill", from: "2001-01-01", to: "2001-01-02", wait: true },
        admin,
      );
      assert.equal(run.json.run.status, "succeeded", run.text);
    } finally {
      await first.close();
    }
    // The objects are in the bucket, not only in the local cache.
    const { S3Client, ListObjectsV2Command } = await import("@aws-sdk/client-s3");
    const client = new S3Client({
      region: s3.region,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: "lake/" }),
    );
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    assert.ok(
      keys.some((k) => k.startsWith("lake/raw/flights/")),
      keys.join("\n"),
    );
    assert.ok(
      keys.some((k) => k.startsWith("lake/view_state/departures/")),
      keys.join("\n"),
    );
    client.destroy();

    // A serve process elsewhere (new project folder, empty cache): the same answers, read from the
    // bucket and the database.
    const project = createProject(config("cache-b"));
    const second = await startNode(loadPipeline(project.dir), {
      port: 0,
      host: "127.0.0.1",
      log: pino({ level: "silent" }),
      roles: ["serve"],
    });
    try {
      const sql = await fetch(`${second.url}/v1/query`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${KEYS.reader.secret}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({
          sql: "SELECT origin, count(*) AS n FROM raw.flights GROUP BY ALL ORDER BY ALL",
        }),
      });
      assert.deepEqual(((await sql.json()) as { rows: unknown }).rows, counts);
      const res = await fetch(
        `${second.url}/v1/views/departures?from=2001-01-01T00:00:00Z&to=2001-01-03T00:00:00Z&grain=day`,
        { headers: { authorization: `Bearer ${KEYS.reader.secret}` } },
      );
      const view = (await res.json()) as { batch_until: string; rows: unknown[][] };
      assert.equal(view.batch_until, "2001-01-03T00:00:00.000Z");
      assert.equal(
        view.rows.reduce((s, r) => s + Number(r[2]), 0),
        300,
      );
      assert.ok(view.rows.every((r) => r[r.length - 1] === "batch"));
    } finally {
      await second.stop();
      project.cleanup();
    }
  });

  it("roles in separate nodes on NATS, PostgreSQL and S3: collect, land + speed, serve + batch", async () => {
    const prefix = uniqueName("it-");
    const roleSchema = `${schema}_roles`;
    const tree: ConfigTree = {
      name: "roles-it",
      streams: { flights: FLIGHTS_STREAM },
      keys: TEST_KEYS,
      lake: { flush: { max_bytes: "16MiB", max_age: "1s" } },
      views: {
        departures: {
          stream: "flights",
          dimensions: ["origin"],
          measures: { flights: "count", p95_delay: "p95(delay)" },
        },
      },
      backends: {
        stream: { kind: "nats", prefix },
        // Speed checkpoints in Redis, shared by the speed node and the serve node.
        speed: { kind: "redis", url: "redis://127.0.0.1:6379", prefix: `${prefix}:` },
        lake: s3.lakeConfig("roles"),
        catalog: { kind: "postgres", url: PG_URL, schema: roleSchema },
      },
    };
    // Each node has its own project folder (its own local cache and data dir), as on its own machine.
    const projects = [createProject(tree), createProject(tree), createProject(tree)];
    const log = pino({ level: "silent" });
    const start = (i: number, roles: Role[]) =>
      startNode(loadPipeline(projects[i]!.dir), { port: 0, host: "127.0.0.1", log, roles });
    const nodes: RunningNode[] = [];
    try {
      const collect = await start(0, ["collect"]);
      nodes.push(collect);
      const land = await start(1, ["land", "speed"]);
      nodes.push(land);
      const serve = await start(2, ["serve", "batch"]);
      nodes.push(serve);
      const call = async (url: string, secret: string, body?: unknown) => {
        const res = await fetch(url, {
          method: body === undefined ? "GET" : "POST",
          headers: {
            authorization: `Bearer ${secret}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, json: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test bodies
      };
      const flights = Array.from({ length: 240 }, (_, i) => ({
        flight_id: `N${i}`,
        date: new Date(Date.UTC(2001, 0, 1, 0, i * 5)).toISOString().slice(0, 19) + "Z",
        delay: i % 50,
        distance: 300,
        origin: ["SFO", "LAX", "ORD"][i % 3]!,
        destination: "JFK",
      }));
      const sent = await call(
        `${collect.url}/v1/streams/flights/events`,
        KEYS.writer.secret,
        flights,
      );
      assert.equal(sent.status, 200, JSON.stringify(sent.json));
      // A retry of the same request (a client that lost the answer) stores nothing new.
      await call(
        `${collect.url}/v1/streams/flights/events`,
        KEYS.writer.secret,
        flights.slice(0, 40),
      );
      // Flush on the serve node: it lands nothing itself and waits for the catalog to hold every
      // position appended before the call (land and speed commit in another node).
      const flushed = await call(`${serve.url}/v1/flush`, KEYS.admin.secret, {});
      assert.equal(flushed.status, 200, JSON.stringify(flushed.json));
      const sql = await call(`${serve.url}/v1/query`, KEYS.reader.secret, {
        sql: "SELECT count(*) AS n, count(DISTINCT _event_id) AS ids FROM raw.flights",
      });
      assert.deepEqual(sql.json.rows, [[240, 240]]);
      // Speed rows come from the speed node's checkpoint, batch rows from the serve node's engine.
      const view = async () =>
        (
          await call(
            `${serve.url}/v1/views/departures?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z&grain=day`,
            KEYS.reader.secret,
          )
        ).json as { batch_until: string | null; rows: unknown[][] };
      const live = await view();
      assert.equal(live.batch_until, null);
      assert.deepEqual(
        live.rows.map((r) => [r[1], r[2], r[r.length - 1]]),
        [
          ["LAX", 80, "speed"],
          ["ORD", 80, "speed"],
          ["SFO", 80, "speed"],
        ],
      );
      const run = await call(`${serve.url}/v1/batch/runs`, KEYS.admin.secret, {
        date: "2001-01-01",
        wait: true,
      });
      assert.equal(run.json.run.status, "succeeded", JSON.stringify(run.json));
      const built = await view();
      assert.equal(built.batch_until, "2001-01-02T00:00:00.000Z");
      assert.deepEqual(
        built.rows.map((r) => [r[1], r[2], r[3], r[r.length - 1]]),
        live.rows.map((r) => [r[1], r[2], r[3], "batch"]),
      );
    } finally {
      for (const n of nodes.reverse()) await n.stop();
      for (const p of projects) p.cleanup();
      await deleteNatsStreams(prefix);
      const { Redis } = await import("ioredis");
      const redis = new Redis("redis://127.0.0.1:6379");
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
