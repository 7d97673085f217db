// Replays a table (DuckDB SELECT) as a live stream through the HTTP API, at a chosen speed of event time.
import { DuckDBInstance, JsonDuckDBValueConverter, type Json } from "@duckdb/node-api";
import type { Logger } from "pino";
import { toMillis } from "../collect/index.js";
import { replacePackageFiles, type ReplayConfig } from "../config/index.js";
import { quoteString } from "../lake/index.js";

/** What a Replayer needs. */
export interface ReplayOptions extends ReplayConfig {
  /** Base URL of the server to send to. */
  readonly url: string;
  readonly secret: string;
  /** Project folder: relative paths and npm packages resolve from it. */
  readonly root: string;
  readonly log: Logger;
}

/**
 * Sends the rows of `sql` to `POST /v1/streams/{stream}/events` so that event time advances
 * `speed` times faster than wall time. Overload answers (429/503) are retried after Retry-After;
 * a retried batch is deduplicated by the stream's id field.
 */
export class Replayer {
  readonly #o: ReplayOptions;
  #stopped = false;
  #done: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** Events acknowledged so far. */
  sent = 0;

  constructor(options: ReplayOptions) {
    this.#o = options;
  }

  start(): void {
    this.#done = this.#run().catch((e: unknown) => {
      if (!this.#stopped) this.#o.log.error({ err: e, stream: this.#o.stream }, "replay failed");
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#done;
  }

  /** Resolves when the replay has sent every row (or was stopped). */
  async finished(): Promise<void> {
    await this.#done;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const sql = resolveFiles(o.sql, o.root);
    const db = await DuckDBInstance.create(":memory:", { threads: "1", memory_limit: "512MB" });
    const conn = await db.connect();
    try {
      const result = await conn.stream(sql);
      const names = result.columnNames();
      const bigints = new Set(
        result.columnTypes().flatMap((t, i) => (/^U?(BIG|HUGE)INT$/.test(t.toString()) ? [i] : [])),
      );
      const timeIndex = names.indexOf(o.time_column);
      if (timeIndex < 0) throw new Error(`replay: the SELECT has no column ${o.time_column}`);
      let wallStart = 0;
      let eventStart = 0;
      let batch: Record<string, Json>[] = [];
      let lastLog = Date.now();
      o.log.info({ stream: o.stream, speed: o.speed }, "replay started");
      while (!this.#stopped) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        for (const row of chunk.convertRows(JsonDuckDBValueConverter)) {
          if (this.#stopped) break;
          const event: Record<string, Json> = {};
          names.forEach((n, i) => {
            const v = row[i] ?? null;
            event[n] = bigints.has(i) && typeof v === "string" ? Number(v) : convert(v);
          });
          const t = toMillis(event[o.time_column]) ?? 0;
          if (wallStart === 0) [wallStart, eventStart] = [Date.now(), t];
          const due = wallStart + (t - eventStart) / o.speed;
          if (batch.length >= o.batch_size || (batch.length > 0 && due > Date.now())) {
            await this.#send(batch);
            batch = [];
          }
          const wait = due - Date.now();
          if (wait > 0) await this.#sleep(wait);
          batch.push(event);
        }
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          o.log.info({ stream: o.stream, sent: this.sent }, "replay progress");
        }
      }
      if (batch.length > 0 && !this.#stopped) await this.#send(batch);
      o.log.info(
        { stream: o.stream, sent: this.sent },
        this.#stopped ? "replay stopped" : "replay finished",
      );
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  }

  async #send(batch: Record<string, Json>[]): Promise<void> {
    const o = this.#o;
    const body = JSON.stringify(batch);
    for (let attempt = 0; !this.#stopped; attempt++) {
      let retryAfter = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
      try {
        const res = await fetch(`${o.url}/v1/streams/${o.stream}/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${o.secret}`, "content-type": "application/json" },
          body,
        });
        if (res.ok) {
          await res.body?.cancel();
          this.sent += batch.length;
          return;
        }
        const text = await res.text();
        if (res.status !== 429 && res.status !== 503)
          throw new Error(`replay: ${res.status} ${text}`);
        retryAfter = Number(res.headers.get("retry-after") ?? 1) * 1000;
      } catch (e) {
        if ((e as Error).message.startsWith("replay:")) throw e;
        // Connection refused or reset: the server is restarting; retry.
      }
      await this.#sleep(retryAfter);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

/** Replaces `{{file:<package>/<path>}}` with the file inside an installed npm package, or a project path. */
export function resolveFiles(sql: string, root: string): string {
  try {
    return replacePackageFiles(sql, root, quoteString);
  } catch (e) {
    throw new Error(`replay: ${(e as Error).message}`, { cause: e });
  }
}

/** DuckDB's JSON form of timestamps has no zone; they are UTC. */
function convert(v: Json): Json {
  return typeof v === "string" && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/.test(v)
    ? `${v.replace(" ", "T")}Z`
    : v;
}
