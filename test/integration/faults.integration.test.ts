// Faults on the distributed backends: a land or speed process killed with SIGKILL mid-stream
// (repeatedly) loses nothing and counts nothing twice. Processes: `tributary run collect` and `tributary run
// land` as children on NATS JetStream + PostgreSQL, the lake a shared folder; a serve node in
// this process checks the result.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { describe, it } from "node:test";
import { pino } from "pino";
import { loadPipeline } from "../../src/config/index.js";
import { startNode, type RunningNode } from "../../src/runtime/node.js";
import { FLIGHTS_STREAM, KEYS, createProject, type ConfigTree } from "../e2e/harness.js";
import {
  NATS,
  PG_URL,
  TEST_KEYS,
  deleteNatsStreams,
  dropSchemas,
  killed,
  runRoles,
  uniqueName,
  type RoleProcess,
} from "./support.js";

/** `n` flight events with ids `<id><from + i>`, one second apart from 2001-01-01 (wrapping daily). */
function flights(id: string, from: number, n: number, origin: (i: number) => string = () => "SFO") {
  return Array.from({ length: n }, (_, i) => ({
    flight_id: `${id}${from + i}`,
    date:
      new Date(Date.UTC(2001, 0, 1, 0, 0, (from + i) % 86_400)).toISOString().slice(0, 19) + "Z",
    delay: i % 60,
    distance: 500,
    origin: origin(i),
    destination: "JFK",
  }));
}

/** Sends events to a collect process; they are acknowledged (200) or the test fails. */
async function post(url: string, events: unknown[]): Promise<void> {
  const res = await fetch(`${url}/v1/streams/flights/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.writer.secret}`, "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  assert.equal(res.status, 200, await res.text());
}

/** POST /v1/flush on a process that does not land: waits until the catalog holds everything. */
async function flush(url: string): Promise<void> {
  const res = await fetch(`${url}/v1/flush`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.admin.secret}` },
  });
  assert.equal(res.status, 200, await res.text());
}

/** A serve node in this process over the project's backends. */
function serveNode(dir: string): Promise<RunningNode> {
  return startNode(loadPipeline(dir), {
    port: 0,
    host: "127.0.0.1",
    log: pino({ level: "silent" }),
    roles: ["serve"],
  });
}

/** [rows, distinct event ids] of raw.flights through a serve node. */
async function rawCounts(serve: RunningNode): Promise<number[][]> {
  const res = await fetch(`${serve.url}/v1/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.reader.secret}`, "content-type": "application/json" },
    body: JSON.stringify({
      sql: "SELECT count(*) AS n, count(DISTINCT _event_id) AS ids FROM raw.flights",
    }),
  });
  return ((await res.json()) as { rows: number[][] }).rows;
}

/** Starts processes of a test project and, afterwards, stops them and removes every trace. */
interface Rig {
  /** `tributary run <roles>` on the project, killed (SIGKILL) at the end if still running. */
  start(roles: string[]): Promise<RoleProcess>;
  /** A serve node in this process over the project's backends. */
  serve(): Promise<RunningNode>;
}

/**
 * Runs `body` on a project made by `config` from a unique JetStream prefix and PostgreSQL schema,
 * then stops its serve nodes, kills its processes, and deletes its folder, schemas and streams.
 */
async function withRig(
  config: (names: { prefix: string; schema: string }) => ConfigTree,
  body: (rig: Rig) => Promise<void>,
): Promise<void> {
  const names = { prefix: uniqueName("fault-"), schema: uniqueName("trb_fault_") };
  const project = createProject(config(names));
  const children: ChildProcess[] = [];
  const serves: RunningNode[] = [];
  try {
    await body({
      start: async (roles) => {
        const p = await runRoles(project.dir, roles);
        children.push(p.child);
        return p;
      },
      serve: async () => {
        const node = await serveNode(project.dir);
        serves.push(node);
        return node;
      },
    });
  } finally {
    for (const node of serves) await node.stop();
    for (const c of children) await killed(c);
    project.cleanup();
    await dropSchemas(names.schema);
    await deleteNatsStreams(names.prefix);
  }
}

describe("faults on NATS + PostgreSQL", () => {
  it("SIGKILL of the land process mid-stream, three times: every event landed exactly once", async () => {
    await withRig(
      ({ prefix, schema }) => ({
        name: "faults-it",
        streams: { flights: FLIGHTS_STREAM },
        keys: TEST_KEYS,
        // Small, frequent files: a kill lands between writes, uploads and commits.
        lake: { flush: { max_bytes: "32KiB", max_age: "100ms" } },
        backends: {
          stream: { kind: "nats", servers: [NATS], prefix },
          catalog: { kind: "postgres", url: PG_URL, schema },
          // A killed process's partition moves to its successor this soon.
          partition_lease: "2s",
        },
      }),
      async (rig) => {
        const collect = await rig.start(["collect"]);
        let land = await rig.start(["land"]);
        let sent = 0;
        for (let round = 0; round < 4; round++) {
          // Send while land works; then kill it mid-stream and start a new one.
          for (let b = 0; b < 10; b++) {
            await post(collect.url, flights("K", sent, 200));
            sent += 200;
          }
          if (round < 3) {
            await killed(land.child);
            land = await rig.start(["land"]);
          }
        }
        // Flush through the collect process: it waits for the catalog to hold everything appended.
        await flush(collect.url);
        const serve = await rig.serve();
        assert.deepEqual(await rawCounts(serve), [[sent, sent]], "every acknowledged event once");
      },
    );
  });

  it("SIGKILL of the speed process mid-stream, three times: the view counts every event once", async () => {
    await withRig(
      ({ prefix, schema }) => ({
        name: "faults-speed-it",
        streams: { flights: FLIGHTS_STREAM },
        keys: TEST_KEYS,
        views: {
          departures: {
            stream: "flights",
            dimensions: ["origin"],
            measures: { flights: "count", destinations: "count_distinct(destination)" },
          },
        },
        backends: {
          stream: { kind: "nats", servers: [NATS], prefix },
          catalog: { kind: "postgres", url: PG_URL, schema },
          // A killed process's partition moves to its successor this soon.
          partition_lease: "2s",
          // Speed checkpoints in the PostgreSQL speed store (compare-and-set per shard).
          speed: { kind: "postgres", url: PG_URL, schema },
        },
      }),
      async (rig) => {
        const collect = await rig.start(["collect"]);
        let speed = await rig.start(["speed"]);
        let sent = 0;
        for (let round = 0; round < 4; round++) {
          for (let b = 0; b < 10; b++) {
            const events = Array.from({ length: 200 }, (_, i) => ({
              flight_id: `S${sent + i}`,
              date:
                // One second apart, in order: nothing arrives behind the speed layer's watermark.
                new Date(Date.UTC(2001, 0, 1, 0, 0, sent + i)).toISOString().slice(0, 19) + "Z",
              delay: i % 60,
              distance: 500,
              origin: ["SFO", "LAX"][(sent + i) % 2]!,
              destination: `D${(sent + i) % 7}`,
            }));
            await post(collect.url, events);
            sent += events.length;
          }
          if (round < 3) {
            await killed(speed.child);
            speed = await rig.start(["speed"]);
          }
        }
        const serve = await rig.serve();
        // The speed process checkpoints at least every second: poll the view until it has caught up.
        let total = -1;
        let rows: unknown[][] = [];
        for (let i = 0; i < 120 && total !== sent; i++) {
          const res = await fetch(
            `${serve.url}/v1/views/departures?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z&grain=day`,
            { headers: { authorization: `Bearer ${KEYS.reader.secret}` } },
          );
          rows = ((await res.json()) as { rows: unknown[][] }).rows;
          total = rows.reduce((s, r) => s + Number(r[2]), 0);
          if (total !== sent) await new Promise((r) => setTimeout(r, 250));
        }
        assert.equal(total, sent, "every event counted once");
        assert.deepEqual(
          rows.map((r) => [r[1], r[2], r[3]]),
          [
            ["LAX", sent / 2, 7],
            ["SFO", sent / 2, 7],
          ],
        );
      },
    );
  });

  it("two land processes share the partitions; one is SIGKILLed and the other takes its partition over", async () => {
    await withRig(
      ({ prefix, schema }) => ({
        name: "faults-failover-it",
        streams: { flights: FLIGHTS_STREAM },
        keys: TEST_KEYS,
        lake: { flush: { max_bytes: "32KiB", max_age: "100ms" } },
        backends: {
          stream: { kind: "nats", servers: [NATS], prefix, partitions: 2 },
          catalog: { kind: "postgres", url: PG_URL, schema },
          partition_lease: "2s",
        },
      }),
      async (rig) => {
        const collect = await rig.start(["collect"]);
        const lands = await Promise.all([rig.start(["land"]), rig.start(["land"])]);
        let sent = 0;
        const send = async (): Promise<void> => {
          await post(
            collect.url,
            flights("S", sent, 200, (i) => (i % 2 === 0 ? "SFO" : "LAX")),
          );
          sent += 200;
        };
        // Both processes hold a partition once each has landed something.
        const landed = async (url: string): Promise<number> => {
          const text = await (await fetch(`${url}/metrics`)).text();
          const line = text
            .split("\n")
            .find(
              (l) =>
                l.startsWith("tributary_land_events_emitted_total{") &&
                l.includes('dataset="raw.flights"'),
            );
          return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
        };
        const deadline = Date.now() + 60_000;
        for (;;) {
          await send();
          const counts = await Promise.all(lands.map((l) => landed(l.url)));
          if (counts.every((n) => n > 0)) break;
          assert.ok(Date.now() < deadline, `both land processes land within a minute: ${counts}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        // Kill one while events keep coming; its partition's lease ends and the survivor takes it.
        await killed(lands[0]!.child);
        for (let b = 0; b < 20; b++) await send();
        await flush(collect.url);
        const serve = await rig.serve();
        assert.deepEqual(await rawCounts(serve), [[sent, sent]], "every acknowledged event once");
      },
    );
  });
});
