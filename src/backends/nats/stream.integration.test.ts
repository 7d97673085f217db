// Runs the Stream contract suite against NATS JetStream, plus dropped connections, two writers and a restart.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, connect as tcpConnect, type Socket } from "node:net";
import { after, describe, test, type TestContext } from "node:test";
import { isTributaryError } from "../../errors.js";
import { streamContract } from "../contracts/stream.case.js";
import { partitionOf, type StreamRecord, type StreamSettings } from "../contracts/index.js";
import { connectNats, DEFAULT_NATS_SERVERS } from "./connection.js";
import { NatsStream, nameToken, type NatsStreamOptions } from "./stream.js";

/** The server under test; CI starts it on the default port. A failure to connect fails the test. */
const SERVERS = process.env.TRIBUTARY_NATS_URL ?? DEFAULT_NATS_SERVERS;

/** Every prefix this run makes is `<RUN>-<n>`; their streams and buckets go when the file is done. */
const RUN = `t${randomBytes(4).toString("hex")}`;
const prefixes = new Map<string, string>();

/** A prefix of its own for `key` (the contract's folder, or a test), the same on every call. */
function prefixFor(key: string): string {
  let prefix = prefixes.get(key);
  if (prefix === undefined) {
    prefix = `${RUN}-${prefixes.size + 1}`;
    prefixes.set(key, prefix);
  }
  return prefix;
}

/** The JetStream streams of this run: `TRB_<prefix>_<stream>` and `KV_TRB_<prefix>_positions`. */
async function streamsOfRun(): Promise<string[]> {
  const admin = await connectNats({ servers: SERVERS });
  try {
    const names: string[] = [];
    for await (const name of admin.jsm.streams.names()) {
      if (name.startsWith(`TRB_${RUN}-`) || name.startsWith(`KV_TRB_${RUN}-`)) names.push(name);
    }
    return names;
  } finally {
    await admin.nc.close();
  }
}

after(async () => {
  const admin = await connectNats({ servers: SERVERS });
  try {
    for (const name of await streamsOfRun()) await admin.jsm.streams.delete(name);
  } finally {
    await admin.nc.close();
  }
  assert.deepEqual(await streamsOfRun(), [], "no stream of this run is left");
});

streamContract("NatsStream", (dir) =>
  NatsStream.open({ servers: SERVERS, prefix: prefixFor(dir) }),
);

// Again with several partitions, so the contract's partitioned cases read filtered subjects.
streamContract("NatsStream, 3 partitions", (dir) =>
  NatsStream.open({ servers: SERVERS, prefix: prefixFor(`p3:${dir}`), partitions: 3 }),
);

describe("NatsStream", () => {
  /** Opens an instance (closed after the test) with a prefix of the test's own, or `prefix`. */
  async function open(
    t: TestContext,
    options: Partial<NatsStreamOptions> = {},
  ): Promise<NatsStream> {
    const s = await NatsStream.open({
      servers: SERVERS,
      prefix: prefixFor(`${t.name}:${randomBytes(4).toString("hex")}`),
      ...options,
    });
    t.after(() => s.close());
    return s;
  }

  test("a retried append after a dropped connection stores each id once", async (t) => {
    const proxy = await startProxy(SERVERS);
    t.after(() => proxy.close());
    const prefix = prefixFor(`drop:${randomBytes(4).toString("hex")}`);
    const first = await open(t, { servers: proxy.servers, prefix, timeoutMs: 1_000 });
    await first.open(settings("s"));
    const before = proxy.sent();
    await first.append("s", records("warm", 10));
    const perRecord = (proxy.sent() - before) / 10;

    // The connection drops with about half of the next append's messages sent: the server stores
    // those, and no acknowledgement comes back, so the append rejects.
    const input = records("r", 200);
    proxy.cutAfter(Math.round(perRecord * 100.5));
    await assert.rejects(first.append("s", input), (e: unknown) =>
      isTributaryError(e, "TRB_STREAM_UNAVAILABLE"),
    );
    await first.close();

    const retry = await open(t, { prefix });
    await retry.open(settings("s"));
    const stored = (await retry.end("s")) - 11;
    assert.ok(stored > 0 && stored < 200, `${stored} of 200 records reached the server`);
    const results = await retry.append("s", input);
    assert.equal(results.filter((r) => r.duplicate).length, stored, "stored ones are duplicates");
    assert.deepEqual(
      results.map((r) => r.seq),
      range(11, 210),
      "each record keeps one position, in order",
    );
    const read = await retry.read("s", 1, { max: 1_000 });
    assert.deepEqual(
      read.map((r) => r.id),
      [...records("warm", 10), ...input].map((r) => r.id),
    );
    assert.equal(await retry.end("s"), 211);
  });

  test("two instances appending to one stream give each record one position, seen alike", async (t) => {
    const prefix = prefixFor(`two:${randomBytes(4).toString("hex")}`);
    const [a, b] = await Promise.all([open(t, { prefix }), open(t, { prefix })]);
    await Promise.all([a.open(settings("s")), b.open(settings("s"))]);
    const calls: { ids: string[]; seqs: Promise<number[]> }[] = [];
    for (let k = 0; k < 5; k++) {
      for (const [name, s] of [["a", a] as const, ["b", b] as const]) {
        const input = records(`${name}${k}-`, 20);
        calls.push({
          ids: input.map((r) => r.id),
          seqs: s.append("s", input).then((res) => res.map((r) => r.seq)),
        });
      }
    }
    // Both collect processes also take the same retried request.
    const shared = records("shared", 10);
    const sharedResults = await Promise.all([a.append("s", shared), b.append("s", shared)]);
    const seqs = await Promise.all(calls.map((c) => c.seqs));

    const all = [...seqs.flat(), ...sharedResults[0]!.map((r) => r.seq)];
    assert.deepEqual(
      [...all].sort((x, y) => x - y),
      range(1, 210),
      "210 records, positions 1..210",
    );
    for (let i = 0; i < 10; i++) {
      const [x, y] = [sharedResults[0]![i]!, sharedResults[1]![i]!];
      assert.equal(x.seq, y.seq, "a shared id has one position");
      assert.equal(Number(x.duplicate) + Number(y.duplicate), 1, "and is stored once");
    }
    const [readA, readB] = await Promise.all([
      a.read("s", 1, { max: 1_000 }),
      b.read("s", 1, { max: 1_000 }),
    ]);
    assert.deepEqual(readA, readB, "both instances read the same records in the same order");
    assert.deepEqual(
      readA.map((r) => r.seq),
      range(1, 210),
    );
    const position = new Map(readA.map((r) => [r.id, r.seq]));
    assert.equal(position.size, 210, "no id is stored twice");
    calls.forEach((c, i) => {
      assert.deepEqual(
        c.ids.map((id) => position.get(id)),
        seqs[i],
        "a call's records sit where its results said, in order",
      );
    });
  });

  test("a restarted instance reads everything from position 1, with the same end and positions", async (t) => {
    const prefix = prefixFor(`restart:${randomBytes(4).toString("hex")}`);
    const first = await open(t, { prefix });
    await first.open(settings("s", { retainMs: 1 }));
    await first.register("s", "land");
    const written = [...records("x", 30), ...records("y", 20)];
    await first.append("s", written.slice(0, 30));
    await first.append("s", written.slice(30));
    await first.commit("s", "land", 21);
    await first.close();

    const second = await open(t, { prefix });
    await second.open(settings("s", { retainMs: 1 }));
    assert.equal(await second.end("s"), 51);
    const read = await second.read("s", 1, { max: 1_000 });
    assert.deepEqual(
      read.map((r) => [r.seq, r.id]),
      written.map((r, i) => [i + 1, r.id]),
    );
    assert.equal(await second.trim("s", Date.now() + 60_000), 20, "the committed position held");
    assert.equal((await second.read("s", 1, { max: 1 }))[0]!.seq, 21);
    assert.equal(await second.end("s"), 51);
  });

  test("ids of any characters read back and deduplicate", async (t) => {
    const s = await open(t);
    await s.open(settings("s"));
    const ids = [
      "",
      "%",
      "%41",
      "A",
      "a b",
      "line\nbreak\r\n",
      "ü",
      "😀",
      "x".repeat(300),
      "a.b>*",
    ];
    const input = ids.map((id, i) => ({ id, time: i, data: JSON.stringify({ i }) }));
    assert.deepEqual(
      (await s.append("s", input)).map((r) => r.duplicate),
      ids.map(() => false),
      "no two of these ids collide",
    );
    const again = await s.append("s", input);
    assert.deepEqual(
      again.map((r) => [r.seq, r.duplicate]),
      ids.map((_, i) => [i + 1, true]),
    );
    assert.deepEqual(
      (await s.read("s", 1, { max: 100 })).map((r) => r.id),
      ids,
    );
  });

  test("partitions are subjects of one JetStream stream; positions stay one order", async (t) => {
    const s = await open(t, { partitions: 4 });
    assert.equal(s.capabilities.partitions, 4);
    await s.open(settings("flights.dlq"));
    const input = records("p", 40);
    const results = await s.append("flights.dlq", input);
    assert.deepEqual(
      results.map((r) => r.seq),
      range(1, 40),
    );
    assert.deepEqual(
      (await s.read("flights.dlq", 1, { max: 100 })).map((r) => r.id),
      input.map((r) => r.id),
    );
    const admin = await connectNats({ servers: SERVERS });
    t.after(() => admin.nc.close());
    const jsName = (await streamsOfRun()).find((n) => n.endsWith(`_${nameToken("flights.dlq")}`));
    assert.ok(jsName, "the stream is TRB_<prefix>_flights-002edlq");
    const info = await admin.jsm.streams.info(jsName, { subjects_filter: ">" });
    assert.equal(
      Object.keys(info.state.subjects ?? {}).length,
      4,
      "records spread over 4 subjects",
    );
    assert.equal(info.config.storage, "file");
  });

  test("partitioned reads that follow on reuse one consumer per partition, filtered on its subject", async (t) => {
    const prefix = prefixFor(`follow:${randomBytes(4).toString("hex")}`);
    const s = await open(t, { prefix, partitions: 3 });
    await s.open(settings("s"));
    await s.append("s", records("f", 60));
    const all = await s.read("s", 1, { max: 1_000 });
    const byPartition = [0, 1, 2].map((p) => all.filter((r) => partitionOf(r.id, 3) === p));
    // Each partition read in steps of 5, each step from where the last one ended.
    for (let p = 0; p < 3; p++) {
      const got: string[] = [];
      for (let from = 1; ;) {
        const step = await s.read("s", from, { max: 5, partition: p });
        if (step.length === 0) break;
        got.push(...step.map((r) => r.id));
        from = step[step.length - 1]!.seq + 1;
      }
      assert.deepEqual(
        got,
        byPartition[p]!.map((r) => r.id),
      );
    }
    const admin = await connectNats({ servers: SERVERS });
    t.after(() => admin.nc.close());
    const jsName = (await streamsOfRun()).find((n) => n.startsWith(`TRB_${prefix}_`));
    assert.ok(jsName, "the stream is TRB_<prefix>_s");
    const filters: string[] = [];
    for await (const c of admin.jsm.consumers.list(jsName)) {
      filters.push(c.config.filter_subject ?? "");
    }
    assert.deepEqual(
      filters.sort(),
      ["", `${prefix}.s.0`, `${prefix}.s.1`, `${prefix}.s.2`],
      "one consumer for every partition (the first read), and one per partition",
    );
    assert.equal(await s.end("s", 1), byPartition[1]!.at(-1)!.seq + 1);
  });

  test("a read from the end waits; one from a trimmed position starts at the first kept", async (t) => {
    const s = await open(t);
    await s.open(settings("s", { retainMs: 1 }));
    await s.register("s", "c");
    await s.append("s", records("a", 6));
    await s.commit("s", "c", 4);
    assert.equal(await s.trim("s", Date.now() + 60_000), 3);
    assert.deepEqual(
      (await s.read("s", 1, { max: 10 })).map((r) => r.seq),
      [4, 5, 6],
    );
    // Reads that follow one another reuse a consumer; a gap or a step back makes a new one.
    assert.deepEqual(
      (await s.read("s", 5, { max: 1 })).map((r) => r.seq),
      [5],
    );
    assert.deepEqual(
      (await s.read("s", 6, { max: 5 })).map((r) => r.seq),
      [6],
    );
    assert.deepEqual(
      (await s.read("s", 2, { max: 2 })).map((r) => r.seq),
      [4, 5],
    );
    const pending = s.read("s", 7, { max: 10, waitMs: 10_000 });
    setTimeout(() => void s.append("s", records("b", 3)), 50);
    const woke = await pending;
    assert.ok(woke.length >= 1);
    assert.equal(woke[0]!.id, "b0");
    assert.deepEqual(
      (await s.readBatches("s", 4, { max: 100 })).map((b) => [b.first, b.count]),
      [[4, 6]],
      "consecutive records make one block",
    );
  });

  test("close ends a waiting read and later calls reject with TRB_STREAM_CLOSED", async (t) => {
    const s = await NatsStream.open({ servers: SERVERS, prefix: prefixFor(`close:${t.name}`) });
    await s.open(settings("s"));
    const pending = s.read("s", 1, { max: 10, waitMs: 60_000 });
    await s.close();
    assert.deepEqual(await pending, []);
    for (const call of [() => s.read("s", 1, { max: 1 }), () => s.end("s")]) {
      await assert.rejects(call, (e: unknown) => isTributaryError(e, "TRB_STREAM_CLOSED"));
    }
  });

  test("a bad prefix is TRB_CONFIG_INVALID", async () => {
    for (const prefix of ["", "a.b", "a_b", "x".repeat(33)]) {
      await assert.rejects(NatsStream.open({ servers: SERVERS, prefix }), (e: unknown) =>
        isTributaryError(e, "TRB_CONFIG_INVALID"),
      );
    }
  });
});

/**
 * A TCP proxy to the server that counts what clients send and can cut them off: after `cutAfter(n)`
 * it forwards `n` more bytes, then closes every connection and accepts no new one.
 */
async function startProxy(target: string): Promise<{
  servers: string;
  sent: () => number;
  cutAfter: (bytes: number) => void;
  close: () => Promise<void>;
}> {
  const url = new URL(target.includes("://") ? target : `nats://${target}`);
  const sockets = new Set<Socket>();
  let sent = 0;
  let budget = Infinity;
  let cut = false;
  const dropAll = (): void => {
    cut = true;
    for (const s of sockets) s.destroy();
  };
  const server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = tcpConnect(Number(url.port || 4222), url.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      // Resets are what this proxy is for.
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    upstream.on("data", (chunk: Buffer) => void client.write(chunk));
    client.on("data", (chunk: Buffer) => {
      if (cut) return;
      const n = Math.min(chunk.length, budget);
      sent += n;
      budget -= n;
      if (budget > 0) return void upstream.write(chunk);
      // The server gets the bytes up to the cut, then end of stream; the client just loses it.
      sockets.delete(upstream);
      upstream.end(chunk.subarray(0, n));
      dropAll();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    servers: `127.0.0.1:${address.port}`,
    sent: () => sent,
    cutAfter: (bytes) => {
      budget = bytes;
    },
    close: () => {
      dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function settings(name: string, overrides: Partial<StreamSettings> = {}): StreamSettings {
  return { name, dedupWindowMs: 600_000, dedupMaxIds: 10_000, retainMs: 3_600_000, ...overrides };
}

function records(prefix: string, n: number): StreamRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    time: Date.UTC(2001, 0, 1) + i,
    data: JSON.stringify({ id: `${prefix}${i}` }),
  }));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
