// The distributed SpeedStore on Redis: one hash per view, compare-and-set saves in Lua scripts.
import type { Redis } from "ioredis";
import { TributaryError } from "../../errors.js";
import type {
  ShardCheckpoint,
  SpeedStore,
  SpeedStoreCapabilities,
  StoredShardCheckpoint,
} from "../contracts/index.js";
import { connectRedis, RedisScript, type RedisOptions } from "./connection.js";
import { checkName, checkSave } from "../contracts/speed-store-checks.js";

/** Options of `RedisSpeedStore.open`. */
export interface RedisSpeedStoreOptions extends RedisOptions {
  /** Prepended to every key, so deployments can share a server (default `tributary:`). */
  readonly prefix?: string;
}

/** The prefix used when none is given. */
export const DEFAULT_PREFIX = "tributary:";

/** One letter per field of a shard's checkpoint; the hash field is `<letter>:<shard>`. */
const FIELDS = ["p", "h", "x", "l", "t", "s"] as const;
type Field = (typeof FIELDS)[number];

/**
 * KEYS[1] the view's hash, KEYS[2] its version counter. ARGV: shard, expected ("" = none),
 * position, viewHash, maxTime ("" = null), late, savedAt, state. Returns {1} when the checkpoint
 * is stored (now or already), {0, stored position or ""} on a conflict. Positions are compared as
 * the decimal strings `String(n)` writes, so Lua's doubles never round one.
 */
const SAVE = new RedisScript(`
local f = ARGV[1]
local stored = redis.call('HGET', KEYS[1], 'p:' .. f)
if stored == ARGV[3] then
  local cur = redis.call('HMGET', KEYS[1], 'h:' .. f, 'x:' .. f, 'l:' .. f, 's:' .. f)
  if cur[1] == ARGV[4] and cur[2] == ARGV[5] and cur[3] == ARGV[6] and cur[4] == ARGV[8] then
    return {1}
  end
end
if (stored or '') ~= ARGV[2] then
  return {0, stored or ''}
end
redis.call('HSET', KEYS[1], 'p:' .. f, ARGV[3], 'h:' .. f, ARGV[4], 'x:' .. f, ARGV[5],
  'l:' .. f, ARGV[6], 't:' .. f, ARGV[7], 's:' .. f, ARGV[8])
redis.call('INCR', KEYS[2])
return {1}
`);

/**
 * KEYS[1] the view's hash, KEYS[2] its version counter; ARGV[1] the shard, or nothing for the
 * whole view. The counter is kept (and moved) when the hash goes, so it never goes back.
 */
const REMOVE = new RedisScript(`
local n
if #ARGV == 0 then
  n = redis.call('DEL', KEYS[1])
else
  local f = ARGV[1]
  n = redis.call('HDEL', KEYS[1], 'p:' .. f, 'h:' .. f, 'x:' .. f, 'l:' .. f, 't:' .. f, 's:' .. f)
end
if n > 0 then
  redis.call('INCR', KEYS[2])
end
return n
`);

/**
 * SpeedStore on Redis. A view is one hash, `<prefix>speed:{<view>}`, with six fields per shard
 * (`p:<shard>` position, `h:` view hash, `x:` max time, `l:` late, `t:` saved at, `s:` the state
 * bytes), and one counter, `<prefix>speed:{<view>}:version`; the view name is URI-encoded, and the
 * braces keep both keys in one Redis Cluster slot. A save is one Lua script: it compares the stored
 * position with `expected`, writes every field and increments the counter, atomically. `load` is
 * one HGETALL, so it sees each shard as one save wrote it.
 *
 * Durable when it resolves only as far as the server's persistence goes: production Redis needs
 * AOF (`appendonly yes`) with `appendfsync always` (nothing acknowledged is lost) or `everysec` (a
 * crash loses up to the last second; a worker then resumes from an older checkpoint and replays).
 * @example
 * const store = await RedisSpeedStore.open({ url: "redis://127.0.0.1:6379", prefix: "prod:" });
 */
export class RedisSpeedStore implements SpeedStore {
  readonly capabilities: SpeedStoreCapabilities = { shared: true };
  readonly #redis: Redis;
  readonly #prefix: string;

  private constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  /** Connects (failing if the server cannot be reached). */
  static async open(options: RedisSpeedStoreOptions): Promise<RedisSpeedStore> {
    const redis = await connectRedis(options);
    return new RedisSpeedStore(redis, options.prefix ?? DEFAULT_PREFIX);
  }

  async save(
    view: string,
    shard: string,
    expected: number | null,
    checkpoint: ShardCheckpoint,
  ): Promise<void> {
    checkSave(view, shard, expected, checkpoint);
    const c = checkpoint;
    const reply = await SAVE.run(this.#redis, this.#keys(view), [
      shard,
      expected === null ? "" : String(expected),
      String(c.position),
      c.viewHash,
      c.maxTime === null ? "" : String(c.maxTime),
      String(c.late),
      new Date().toISOString(),
      Buffer.from(c.state.buffer, c.state.byteOffset, c.state.byteLength),
    ]);
    const [ok, stored] = reply as [number, string?];
    if (ok === 1) return;
    throw new TributaryError(
      "TRB_CATALOG_CONFLICT",
      `speed checkpoint of ${view}/${shard} is at ${stored || "none"}, not ${expected ?? "none"}: another worker saved it; reload it with loadShard`,
    );
  }

  async load(view: string): Promise<StoredShardCheckpoint[]> {
    checkName("view", view);
    const [hash] = this.#keys(view);
    const all = await this.#redis.hgetallBuffer(hash);
    const byShard = new Map<string, Partial<Record<Field, Buffer>>>();
    for (const [name, value] of Object.entries(all)) {
      const field = name[0] as Field;
      const shard = name.slice(2);
      if (!FIELDS.includes(field) || name[1] !== ":") {
        throw new Error(`unexpected field ${JSON.stringify(name)} in Redis hash ${hash}`);
      }
      const fields = byShard.get(shard) ?? {};
      fields[field] = value;
      byShard.set(shard, fields);
    }
    return [...byShard.keys()]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((shard) => decode(hash, shard, byShard.get(shard)!));
  }

  async loadShard(view: string, shard: string): Promise<StoredShardCheckpoint | undefined> {
    checkName("view", view);
    checkName("shard", shard);
    const [hash] = this.#keys(view);
    const values = await this.#redis.hmgetBuffer(hash, ...FIELDS.map((f) => `${f}:${shard}`));
    if (values[0] === null) return undefined;
    const fields: Partial<Record<Field, Buffer>> = {};
    FIELDS.forEach((f, i) => {
      if (values[i] !== null && values[i] !== undefined) fields[f] = values[i];
    });
    return decode(hash, shard, fields);
  }

  async remove(view: string, shard?: string): Promise<void> {
    checkName("view", view);
    if (shard !== undefined) checkName("shard", shard);
    await REMOVE.run(this.#redis, this.#keys(view), shard === undefined ? [] : [shard]);
  }

  async version(view: string): Promise<number> {
    checkName("view", view);
    const value = await this.#redis.get(this.#keys(view)[1]);
    return value === null ? 0 : Number(value);
  }

  /** Waits for pending replies, then closes the connection. */
  async close(): Promise<void> {
    if (this.#redis.status === "end") return;
    await this.#redis.quit();
  }

  /** The view's hash and version counter. */
  #keys(view: string): [hash: string, version: string] {
    const hash = `${this.#prefix}speed:{${encodeURIComponent(view)}}`;
    return [hash, `${hash}:version`];
  }
}

/** A shard's checkpoint from its hash fields (every save writes all six). */
function decode(
  hash: string,
  shard: string,
  f: Partial<Record<Field, Buffer>>,
): StoredShardCheckpoint {
  const text = (field: Field): string => {
    const value = f[field];
    if (value === undefined) {
      throw new Error(`field ${field}:${shard} is missing in Redis hash ${hash}`);
    }
    return value.toString("utf8");
  };
  const maxTime = text("x");
  const state = f.s;
  if (state === undefined) throw new Error(`field s:${shard} is missing in Redis hash ${hash}`);
  return {
    shard,
    viewHash: text("h"),
    position: Number(text("p")),
    maxTime: maxTime === "" ? null : Number(maxTime),
    late: Number(text("l")),
    // A copy: the reply's buffer may be a view into a larger one.
    state: Uint8Array.from(state),
    savedAt: text("t"),
  };
}
