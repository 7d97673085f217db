// Runs the SpeedStore contract suite against the Redis server, plus its key layout and script loading.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { Redis } from "ioredis";
import { speedStoreContract } from "../contracts/speed-store.case.js";
import { connectRedis, DEFAULT_REDIS_URL, RedisScript } from "./connection.js";
import { RedisSpeedStore } from "./speed-store.js";

/** The server under test; CI starts it on the default port. A failure to connect fails the test. */
const URL = process.env.TRIBUTARY_REDIS_URL ?? DEFAULT_REDIS_URL;

/** Every key this run makes starts with `<RUN>`; all are deleted when the file is done. */
const RUN = `trb_test_${randomBytes(4).toString("hex")}`;
const prefixes = new Map<string, string>();

/** A prefix of its own for `key` (the contract's folder), the same on every call. */
function prefixFor(key: string): string {
  let prefix = prefixes.get(key);
  if (prefix === undefined) {
    prefix = `${RUN}:${prefixes.size + 1}:`;
    prefixes.set(key, prefix);
  }
  return prefix;
}

/** Every key under `prefix` (SCAN, which never blocks the server as KEYS would). */
async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return keys;
}

after(async () => {
  const admin = new Redis(URL);
  try {
    const keys = await keysUnder(admin, RUN);
    if (keys.length > 0) await admin.del(...keys);
    assert.deepEqual(await keysUnder(admin, RUN), [], "no key of this run is left");
  } finally {
    await admin.quit();
  }
});

speedStoreContract("RedisSpeedStore", (dir) =>
  RedisSpeedStore.open({ url: URL, prefix: prefixFor(dir) }),
);

describe("RedisSpeedStore", () => {
  test("a view is one hash with six fields per shard, and one version counter", async (t) => {
    const prefix = prefixFor(`layout:${randomBytes(4).toString("hex")}`);
    const store = await RedisSpeedStore.open({ url: URL, prefix });
    const admin = new Redis(URL);
    t.after(async () => {
      await store.close();
      await admin.quit();
    });
    const state = Uint8Array.from([0, 1, 2, 255]);
    await store.save("daily:rev{x}", "p0", null, {
      viewHash: "h",
      position: 12,
      maxTime: null,
      late: 0,
      state,
    });
    const hash = `${prefix}speed:{daily%3Arev%7Bx%7D}`;
    assert.deepEqual((await keysUnder(admin, prefix)).sort(), [hash, `${hash}:version`]);
    assert.deepEqual((await admin.hkeys(hash)).sort(), [
      "h:p0",
      "l:p0",
      "p:p0",
      "s:p0",
      "t:p0",
      "x:p0",
    ]);
    assert.equal(await admin.hget(hash, "p:p0"), "12");
    assert.ok((await admin.hgetBuffer(hash, "s:p0"))!.equals(Buffer.from(state)));
    assert.equal(await admin.get(`${hash}:version`), "1");
  });

  test("a script the server has not cached yet runs with EVAL, then by digest", async (t) => {
    const redis = await connectRedis({ url: URL });
    t.after(() => redis.quit());
    // A script text of its own: no other run cached it, and nothing global (SCRIPT FLUSH) is reset.
    const lua = `-- ${RUN}\nreturn redis.call('INCR', KEYS[1])`;
    const script = new RedisScript(lua);
    const sha = createHash("sha1").update(lua).digest("hex");
    assert.deepEqual(await redis.script("EXISTS", sha), [0]);
    const key = `${prefixFor(`script:${RUN}`)}counter`;
    assert.equal(await script.run(redis, [key], []), 1);
    assert.deepEqual(await redis.script("EXISTS", sha), [1], "EVAL cached it");
    assert.equal(await script.run(redis, [key], []), 2);
  });

  test("a server that cannot be reached fails open", async () => {
    await assert.rejects(
      RedisSpeedStore.open({ url: "redis://127.0.0.1:1", connectTimeoutMs: 2_000 }),
      /cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/,
    );
  });
});
