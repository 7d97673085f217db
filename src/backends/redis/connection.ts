// Opens Redis for the distributed backends (ioredis loaded lazily), and runs Lua scripts by digest.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** Options of `connectRedis`. */
export interface RedisOptions {
  /** Connection URL, e.g. `redis://:secret@cache.internal:6379/0` (`rediss://` for TLS). */
  readonly url: string;
  /** How long the first connection may take before `connectRedis` fails (default 10 s). */
  readonly connectTimeoutMs?: number;
}

/** The URL used when none is configured (the test server). */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/**
 * Connects to Redis and waits until the server answers. Loads `ioredis` here, so a process that
 * never opens a distributed backend never loads it. A server that cannot be reached rejects (no
 * endless reconnecting in the background). Once connected, ioredis reconnects on its own and
 * resends commands that got no reply (which is why every write script is idempotent); a command
 * fails after 20 reconnection attempts.
 * @example const redis = await connectRedis({ url: "redis://127.0.0.1:6379" });
 */
export async function connectRedis(options: RedisOptions): Promise<Redis> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(options.url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
  });
  // Connection errors reach callers through the commands they fail; without a listener ioredis
  // would also print each one ("Unhandled error event") while it reconnects.
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${redact(options.url)}`, { cause: e });
  }
  return redis;
}

/** A Lua script run with EVALSHA, sent once more with EVAL when the server does not cache it yet. */
export class RedisScript {
  readonly #lua: string;
  readonly #sha: string;

  constructor(lua: string) {
    this.#lua = lua;
    this.#sha = createHash("sha1").update(lua).digest("hex");
  }

  /** Runs the script on `keys` (all in one hash slot, for Redis Cluster) with `args`. */
  async run(
    redis: Redis,
    keys: readonly string[],
    args: readonly (string | Buffer)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (e) {
      // The script cache is empty after a server restart or SCRIPT FLUSH.
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      return redis.eval(this.#lua, keys.length, ...keys, ...args);
    }
  }
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "(an unparsable URL)";
  }
}
