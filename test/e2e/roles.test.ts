// Roles: a process runs only some stages; a serve process answers SQL and views from the catalog,
// the speed role's window states included (its checkpoints).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { loadPipeline } from "../../src/config/index.js";
import { startNode } from "../../src/runtime/node.js";
import { FLIGHTS_STREAM, KEYS, createProject } from "./harness.js";

const CONFIG = {
  name: "roles-e2e",
  streams: { flights: FLIGHTS_STREAM },
  keys: [
    { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
    { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
    { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
  ],
  lake: { flush: { max_bytes: "16MiB", max_age: "1s" } },
  views: {
    departures: {
      stream: "flights",
      dimensions: ["origin"],
      measures: { flights: "count", avg_delay: "avg(delay)" },
    },
  },
};

async function call(
  url: string,
  method: "GET" | "POST",
  secret: string,
  body?: unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary bodies
): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${secret}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

describe("roles", () => {
  it("collect+land+speed in one node, serve in another: the serve node answers SQL and views", async () => {
    const project = createProject(CONFIG);
    const log = pino({ level: "silent" });
    const pipeline = loadPipeline(project.dir);
    const writer = await startNode(pipeline, {
      port: 0,
      host: "127.0.0.1",
      replay: false,
      log,
      roles: ["collect", "land", "speed"],
    });
    const reader = await startNode(loadPipeline(project.dir), {
      port: 0,
      host: "127.0.0.1",
      replay: false,
      log,
      roles: ["serve"],
    });
    try {
      // Each process serves only its roles' endpoints.
      const sqlOnWriter = await call(`${writer.url}/v1/query`, "POST", KEYS.reader.secret, {
        sql: "SELECT 1",
      });
      assert.equal(sqlOnWriter.status, 404, "no serve role: no SQL endpoint");
      const ingestOnReader = await call(
        `${reader.url}/v1/streams/flights/events`,
        "POST",
        KEYS.writer.secret,
        [],
      );
      assert.equal(ingestOnReader.status, 404, "no collect role: no ingest endpoint");
      assert.deepEqual((await call(`${reader.url}/`, "GET", KEYS.reader.secret)).json.roles, [
        "serve",
      ]);

      const flights = Array.from({ length: 120 }, (_, i) => ({
        flight_id: `R${i}`,
        date: new Date(Date.UTC(2001, 0, 1, 0, i)).toISOString().slice(0, 19) + "Z",
        delay: i % 30,
        distance: 400,
        origin: ["SFO", "LAX"][i % 2]!,
        destination: "JFK",
      }));
      const sent = await call(
        `${writer.url}/v1/streams/flights/events`,
        "POST",
        KEYS.writer.secret,
        flights,
      );
      assert.equal(sent.status, 200);
      // The embedded stream belongs to one process (the serve node's copy does not see the
      // writer's appends), so flush where land runs; with NATS any process can flush.
      const flushed = await call(`${writer.url}/v1/flush`, "POST", KEYS.admin.secret);
      assert.equal(flushed.status, 200, JSON.stringify(flushed.json));
      const count = await call(`${reader.url}/v1/query`, "POST", KEYS.reader.secret, {
        sql: "SELECT count(*) AS n FROM raw.flights",
      });
      assert.deepEqual(count.json.rows, [[120]]);

      // Views: the serve process reads the speed role's checkpoint from the catalog (the flush
      // above waited for the speed layer to apply and checkpoint everything).
      const view = await call(
        `${reader.url}/v1/views/departures?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z&grain=hour`,
        "GET",
        KEYS.reader.secret,
      );
      assert.equal(view.status, 200, JSON.stringify(view.json));
      assert.deepEqual(
        view.json.rows.map((r: unknown[]) => [r[0], r[1], r[2], r[r.length - 1]]),
        [
          ["2001-01-01T00:00:00.000Z", "LAX", 30, "speed"],
          ["2001-01-01T00:00:00.000Z", "SFO", 30, "speed"],
          ["2001-01-01T01:00:00.000Z", "LAX", 30, "speed"],
          ["2001-01-01T01:00:00.000Z", "SFO", 30, "speed"],
        ],
      );
      const sql = await call(`${reader.url}/v1/query`, "POST", KEYS.reader.secret, {
        sql: "SELECT sum(flights) AS n, count(*) AS buckets FROM view.departures",
      });
      assert.deepEqual(sql.json.rows, [[120, 120]]);
    } finally {
      await reader.stop();
      await writer.stop();
      project.cleanup();
    }
  });
});
