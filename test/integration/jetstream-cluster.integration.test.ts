// A 3-node JetStream cluster on loopback with replicas = 3: the stream leader is killed (SIGKILL)
// while a collect node ingests, clients retry what was not acknowledged (as they must on 503), and
// afterwards every acknowledged event is in the stream exactly once.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pino } from "pino";
import { NatsStream } from "../../src/backends/nats/stream.js";
import { loadPipeline } from "../../src/config/index.js";
import { startNode } from "../../src/runtime/node.js";
import { FLIGHTS_STREAM, KEYS, createProject } from "../e2e/harness.js";

const NATS_SERVER = "/usr/sbin/nats-server";

interface ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly monitor: string;
  readonly log: string;
  child: ChildProcess;
}

/** Ports the kernel reports free now (bound to port 0, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Starts three clustered JetStream servers, each logging to `<dir>/<name>.log`. */
async function startCluster(dir: string): Promise<ClusterNode[]> {
  const ports = await freePorts(9);
  const names = ["n1", "n2", "n3"];
  return names.map((name, i) => {
    const routes = names
      .map((_, j) => `nats://127.0.0.1:${ports[3 + j]}`)
      .filter((_, j) => j !== i)
      .join(",");
    const child = spawn(
      NATS_SERVER,
      [
        "-a",
        "127.0.0.1",
        "-p",
        String(ports[i]),
        "-m",
        String(ports[6 + i]),
        "-js",
        "-sd",
        join(dir, name),
        "-l",
        join(dir, `${name}.log`),
        "--server_name",
        name,
        "--cluster_name",
        "trb",
        "--cluster",
        `nats://127.0.0.1:${ports[3 + i]}`,
        "--routes",
        routes,
      ],
      { stdio: "ignore" },
    );
    return {
      name,
      url: `nats://127.0.0.1:${ports[i]}`,
      monitor: `http://127.0.0.1:${ports[6 + i]}`,
      log: join(dir, `${name}.log`),
      child,
    };
  });
}

/**
 * Waits until every server sees a JetStream meta leader of a 3-node cluster and the leader sees
 * both followers current, the state
 * in which a stream with replicas = 3 can be placed. Fails with the servers' log tails.
 */
async function waitForCluster(cluster: ClusterNode[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const states = await Promise.all(
      cluster.map(async (n) => {
        try {
          const res = await fetch(`${n.monitor}/jsz`);
          const jsz = (await res.json()) as {
            meta_cluster?: {
              leader?: string;
              cluster_size?: number;
              replicas?: { current?: boolean }[];
            };
          };
          const meta = jsz.meta_cluster;
          last = `${n.name}: ${JSON.stringify(meta)}`;
          if (meta?.leader === undefined || meta.leader === "" || meta.cluster_size !== 3)
            return false;
          // Only the meta leader reports its followers; both must be current.
          if (meta.leader !== n.name) return true;
          const replicas = meta.replicas ?? [];
          return replicas.length === 2 && replicas.every((r) => r.current === true);
        } catch (e) {
          last = `${n.name}: ${String(e)}`;
          return false;
        }
      }),
    );
    if (states.every(Boolean)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  const tails = cluster
    .map((n) => {
      let text: string;
      try {
        text = readFileSync(n.log, "utf8").split("\n").slice(-15).join("\n");
      } catch {
        text = "(no log)";
      }
      return `--- ${n.name} (exit ${n.child.exitCode ?? n.child.signalCode ?? "running"})\n${text}`;
    })
    .join("\n");
  throw new Error(
    `the JetStream cluster did not form in ${timeoutMs / 1000} s; last ${last}\n${tails}`,
  );
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("JetStream cluster", () => {
  it("killing the stream leader during ingestion loses no acknowledged event and duplicates none", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trb-jscluster-"));
    const cluster = await startCluster(dir);
    const servers = cluster.map((n) => n.url);
    const prefix = "cluster";
    const project = createProject({
      name: "cluster-it",
      streams: { flights: FLIGHTS_STREAM },
      keys: [{ id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] }],
      backends: { stream: { kind: "nats", servers, prefix, replicas: 3 } },
    });
    let node: Awaited<ReturnType<typeof startNode>> | undefined;
    let reader: NatsStream | undefined;
    try {
      await waitForCluster(cluster);
      // The meta leader may still be settling: a replicated stream's creation is retried.
      for (let attempt = 0; ; attempt++) {
        try {
          node = await startNode(loadPipeline(project.dir), {
            port: 0,
            host: "127.0.0.1",
            log: pino({ level: "silent" }),
            roles: ["collect"],
          });
          break;
        } catch (e) {
          if (attempt >= 20) throw e;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      const acknowledged = new Set<string>();
      let retries = 0;
      const send = async (ids: string[]): Promise<void> => {
        const events = ids.map((id, i) => ({
          flight_id: id,
          date: new Date(Date.UTC(2001, 0, 1, 0, i)).toISOString().slice(0, 19) + "Z",
          delay: i,
          distance: 100,
          origin: "SFO",
          destination: "JFK",
        }));
        // A client retries the same request until it is acknowledged (the ids deduplicate).
        for (;;) {
          const res = await fetch(`${node!.url}/v1/streams/flights/events`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${KEYS.writer.secret}`,
              "content-type": "application/json",
            },
            body: JSON.stringify(events),
          });
          if (res.status === 200) {
            for (const id of ids) acknowledged.add(id);
            return;
          }
          assert.equal(res.status, 503, await res.text());
          assert.ok(res.headers.get("retry-after"), "503 carries Retry-After");
          retries++;
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      let n = 0;
      const batch = (): string[] => Array.from({ length: 100 }, () => `C${n++}`);
      for (let b = 0; b < 20; b++) await send(batch());
      // Kill the stream's leader while sends are in flight.
      const { connect } = await import("@nats-io/transport-node");
      const { jetstreamManager } = await import("@nats-io/jetstream");
      const nc = await connect({ servers });
      const jsm = await jetstreamManager(nc);
      let leader: string | undefined;
      for await (const si of jsm.streams.list())
        if (si.config.name.startsWith(`TRB_${prefix}_`) && !si.config.name.includes("dlq"))
          leader = si.cluster?.leader;
      await nc.close();
      const victim = cluster.find((c) => c.name === leader);
      assert.ok(victim, `the stream has a leader among ${cluster.map((c) => c.name).join(", ")}`);
      const inFlight = Promise.all([send(batch()), send(batch()), send(batch())]);
      await kill(victim.child);
      await inFlight;
      for (let b = 0; b < 20; b++) await send(batch());

      // Read the whole stream back from the surviving servers. While the cluster elects new
      // leaders (the meta leader too, if it was the victim) JetStream may refuse: retry as a
      // reader would.
      for (let attempt = 0; ; attempt++) {
        try {
          reader = await NatsStream.open({
            servers: cluster.filter((c) => c !== victim).map((c) => c.url),
            prefix,
            replicas: 3,
          });
          await reader.open({
            name: "flights",
            dedupWindowMs: 600_000,
            dedupMaxIds: 100_000,
            retainMs: 0,
          });
          break;
        } catch (e) {
          await reader?.close().catch(() => undefined);
          reader = undefined;
          if (attempt >= 60) throw e;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      const seen = new Map<string, number>();
      for (let from = 1; ;) {
        // A consumer cannot be created while the stream elects a new leader: retry as a reader would.
        let records;
        for (let attempt = 0; ; attempt++) {
          try {
            records = await reader!.read("flights", from, { max: 1000 });
            break;
          } catch (e) {
            if (attempt >= 30) throw e;
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        if (records.length === 0) break;
        for (const r of records) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
        from = records[records.length - 1]!.seq + 1;
      }
      const missing = [...acknowledged].filter((id) => !seen.has(id));
      const twice = [...seen].filter(([, c]) => c > 1).map(([id]) => id);
      assert.deepEqual(missing, [], "every acknowledged event is stored");
      assert.deepEqual(twice, [], "no event is stored twice");
      assert.equal(acknowledged.size, n, "every send was eventually acknowledged");
      process.stderr.write(`  leader ${leader} killed; ${retries} retried requests\n`);
    } finally {
      await reader?.close().catch(() => undefined);
      await node?.stop().catch(() => undefined);
      for (const c of cluster) await kill(c.child);
      project.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
