// Lands one stream into one dataset: buffer, write Parquet, commit files and stream positions together.
import { randomUUID } from "node:crypto";
import { mkdir, open, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type {
  CatalogStore,
  FileEntry,
  ObjectStore,
  ReadOptions,
  RecordBatch,
  Stream,
} from "../backends/contracts/index.js";
import { TributaryError, isTributaryError } from "../errors.js";
import { datasetPrefix, mapLimit, type DatasetDef, type ParquetWriter } from "../lake/index.js";
import { metrics } from "../telemetry.js";

/** Consumer name of the land stage in stream positions. */
export const LAND_CONSUMER = "land";

/** What a Lander needs. */
export interface LanderOptions {
  readonly stream: Stream;
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
  readonly writer: ParquetWriter;
  readonly streamName: string;
  readonly dataset: DatasetDef;
  readonly flushMaxBytes: number;
  readonly flushMaxAgeMs: number;
  readonly compression: string;
  /** Local folder for NDJSON and Parquet being written (same file system as a local lake). */
  readonly stagingDir: string;
  readonly log: Logger;
  /** Most records read per call. */
  readonly readBatch?: number;
  /**
   * The stream partition this lander consumes (default 0). With more than one partition each
   * partition has its own position in the catalog and its own consumer name (`land.p<k>`).
   */
  readonly partition?: number;
  /**
   * Uncommitted files younger than this are not deleted as orphans at start (default 0). Where
   * other processes land the same dataset (distributed), a file they have put but not committed
   * yet is not an orphan: 15 minutes leaves every commit time to finish.
   */
  readonly orphanMinAgeMs?: number;
}

interface HourStats {
  rows: number;
  min: number;
  max: number;
}

const HOUR = 3_600_000;

/** Files put into the lake at once when a landing spans many partitions. */
const PUT_CONCURRENCY = 8;

/**
 * Most event hours (partitions) one landing writes. DuckDB's partitioned COPY keeps buffers per
 * partition: 50k events spread over 2,800 hours fail with "Out of Memory" at the writer's 512 MB,
 * and the retry of the same batch fails the same way, so landing would stop for good (a backfill or
 * a replay of history is enough). 1,000 hours per landing was measured to fit; 256 leaves margin.
 */
const MAX_HOURS_PER_LANDING = 256;

/**
 * Consumes a stream from the position stored in the catalog and commits Parquet files with the
 * position they reach in one catalog transaction. A crash before the commit leaves orphan files
 * (deleted at the next start) and the old position (the events are read again): nothing is lost
 * or landed twice.
 */
export class Lander {
  readonly #o: LanderOptions;
  /** Records buffered (written to the staging NDJSON file, not yet landed). */
  #rows = 0;
  #bytes = 0;
  /** The staging NDJSON file of the buffer: records are appended as they are read. */
  #file: { path: string; handle: FileHandle | undefined } | undefined;
  #hours = new Map<number, HourStats>();
  #firstBufferedAt = 0;
  /** Position stored in the catalog (0 = nothing landed yet). */
  #committed = 0;
  /** Next position to read. */
  #next = 1;
  #waiters: { target: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #stopping = false;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #failures = 0;

  readonly #partition: number;
  /** Read options that select this lander's partition (none when the stream has one). */
  readonly #select: { partition?: number };
  /** Consumer name in the stream (retention). */
  readonly #consumer: string;

  constructor(options: LanderOptions) {
    this.#o = options;
    this.#partition = options.partition ?? 0;
    const partitioned = options.stream.capabilities.partitions > 1;
    this.#select = partitioned ? { partition: this.#partition } : {};
    this.#consumer = partitioned ? `${LAND_CONSUMER}.p${this.#partition}` : LAND_CONSUMER;
  }

  /** The stream partition this lander consumes. */
  get partition(): number {
    return this.#partition;
  }

  /** Position up to which events are committed (exclusive). */
  get committed(): number {
    return Math.max(this.#committed, 1);
  }

  /** Restores the position, removes orphan files, and starts consuming. */
  async start(): Promise<void> {
    await this.prepare();
    this.run();
  }

  /** Restores the position and removes orphan files, without consuming yet. */
  async prepare(): Promise<void> {
    const o = this.#o;
    await o.stream.register(o.streamName, this.#consumer);
    this.#committed = await o.catalog.position(LAND_CONSUMER, o.streamName, this.#partition);
    this.#next = Math.max(this.#committed, 1);
    await rm(o.stagingDir, { recursive: true, force: true });
    await this.#removeOrphans();
  }

  /** Starts consuming (after `prepare`). Idempotent. */
  run(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves once every event appended before the call is committed to the lake. */
  async flush(): Promise<void> {
    const target = await this.#end();
    if (this.committed >= target) return;
    await new Promise<void>((resolve, reject) => {
      this.#waiters.push({ target, resolve, reject });
      this.#abort.abort();
    });
  }

  /** Lands what is buffered and stops. Call `flush()` first to land everything acknowledged. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const max = o.readBatch ?? 5_000;
    while (!this.#stopping || this.#rows > 0) {
      try {
        if (this.#stopping) {
          await this.#land();
          break;
        }
        const urgent = this.#waiters.length > 0;
        const age = this.#rows > 0 ? Date.now() - this.#firstBufferedAt : 0;
        const waitMs = urgent ? 0 : this.#rows > 0 ? Math.max(0, o.flushMaxAgeMs - age) : 1000;
        if (this.#abort.signal.aborted) this.#abort = new AbortController();
        // Yield to I/O between reads: reading and splitting a backlog is synchronous work, and
        // catching up after a restart must not stall HTTP intake (or readiness).
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batches = await readBatches(o.stream, o.streamName, this.#next, {
          ...this.#select,
          max,
          waitMs,
          signal: this.#abort.signal,
        });
        let consumed = 0;
        let split = false;
        const chunks: string[] = [];
        for (const b of batches) {
          let take = b.count;
          for (let i = 0; i < b.count; i++) {
            const t = b.times[i]!;
            const bucket = Math.floor(t / HOUR);
            const h = this.#hours.get(bucket);
            if (h) {
              h.rows++;
              if (t < h.min) h.min = t;
              if (t > h.max) h.max = t;
            } else if (this.#hours.size >= MAX_HOURS_PER_LANDING) {
              // Land what is buffered first; this record and the rest are read again afterwards.
              take = i;
              split = true;
              break;
            } else this.#hours.set(bucket, { rows: 1, min: t, max: t });
          }
          if (take > 0) {
            chunks.push(take === b.count ? b.data : b.data.slice(0, lineOffset(b.data, take) - 1));
            consumed += take;
            // A partition's positions have gaps (other partitions' records): follow the records.
            this.#next = b.positions ? b.positions[take - 1]! + 1 : b.first + take;
          }
          if (split) break;
        }
        if (consumed > 0) {
          if (this.#rows === 0) this.#firstBufferedAt = Date.now();
          const text = chunks.join("\n") + "\n";
          await this.#append(text);
          this.#rows += consumed;
          this.#bytes += text.length;
        }
        const read = batches.reduce((n, b) => n + b.count, 0);
        if (consumed > 0) metrics.landReceived.inc({ dataset: this.#name() }, consumed);
        metrics.landLag.set({ dataset: this.#name() }, (await this.#end()) - this.committed);
        const full = this.#bytes >= o.flushMaxBytes;
        const old = this.#rows > 0 && Date.now() - this.#firstBufferedAt >= o.flushMaxAgeMs;
        const drained = read < max && !split;
        if (full || old || split || (this.#waiters.length > 0 && drained)) await this.#land();
        if (this.#waiters.length > 0 && drained && this.#rows === 0) this.#settleWaiters();
        this.#failures = 0;
      } catch (e) {
        this.#failures++;
        metrics.landErrors.inc({ dataset: this.#name() });
        if (isTributaryError(e, "TRB_CATALOG_CONFLICT")) {
          // Another lander committed this range: drop the buffer and continue from its position.
          o.log.info(
            { dataset: this.#name(), err: e.message },
            "position moved by another lander; re-reading",
          );
          await this.#resetBuffer();
          this.#committed = await o.catalog.position(LAND_CONSUMER, o.streamName, this.#partition);
          this.#next = Math.max(this.#committed, 1);
          continue;
        }
        o.log.error(
          { dataset: this.#name(), err: e },
          "landing failed; the events stay in the stream and will be retried",
        );
        if (this.#stopping && this.#failures >= 3) {
          for (const w of this.#waiters.splice(0)) w.reject(e);
          break;
        }
        await sleep(Math.min(30_000, 200 * 2 ** Math.min(this.#failures, 8)));
      }
    }
    this.#settleWaiters();
  }

  /** Writes the buffer as Parquet and commits it with the stream position. */
  async #land(): Promise<void> {
    const o = this.#o;
    if (this.#rows === 0) {
      // Nothing buffered, but the position may have moved past records of no interest (none today).
      return;
    }
    const file = this.#file!;
    if (file.handle) {
      await file.handle.close();
      file.handle = undefined;
    }
    const outDir = join(o.stagingDir, randomUUID());
    try {
      let written;
      try {
        written = await o.writer.writeByEventHour(
          file.path,
          o.dataset.columns,
          outDir,
          o.compression,
        );
      } catch (e) {
        throw new TributaryError(
          "TRB_LAND_WRITE_FAILED",
          `writing Parquet for ${this.#name()} failed: ${(e as Error).message}`,
          { cause: e },
        );
      }
      const prefix = datasetPrefix(o.dataset.ref);
      // Files are made durable in parallel: each put waits for fsyncs, which the thread pool overlaps.
      const files = await mapLimit(written, PUT_CONCURRENCY, async (w): Promise<FileEntry> => {
        const key = prefix + w.relative;
        const { bytes } = await o.lake.putFile(key, w.localPath);
        const dt = w.partition.dt!;
        const hour = Number(w.partition.hour);
        const stats = this.#hours.get(Math.floor(Date.parse(`${dt}T00:00:00Z`) / HOUR) + hour);
        return {
          path: key,
          partition: w.partition,
          rows: stats?.rows ?? 0,
          bytes,
          minTime: stats?.min ?? null,
          maxTime: stats?.max ?? null,
        };
      });
      const rows = this.#rows;
      await o.catalog.commit({
        dataset: o.dataset.ref,
        add: files,
        positions: [
          {
            consumer: LAND_CONSUMER,
            stream: o.streamName,
            partition: this.#partition,
            from: this.#committed,
            to: this.#next,
          },
        ],
        summary: `land ${rows} events from ${o.streamName}${this.#select.partition === undefined ? "" : ` partition ${this.#partition}`} [${this.committed}, ${this.#next})`,
      });
      this.#committed = this.#next;
      metrics.landEmitted.inc({ dataset: this.#name() }, rows);
      metrics.landFiles.inc({ dataset: this.#name() }, files.length);
      await this.#resetBuffer();
      await o.stream.commit(o.streamName, this.#consumer, this.#committed);
      await o.stream.trim(o.streamName);
      this.#settleWaiters();
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  }

  /** Appends records to the buffer's staging file, creating it for the first ones. */
  async #append(text: string): Promise<void> {
    if (!this.#file) {
      await mkdir(this.#o.stagingDir, { recursive: true });
      const path = join(this.#o.stagingDir, `${randomUUID()}.ndjson`);
      this.#file = { path, handle: await open(path, "w") };
    }
    if (!this.#file.handle) this.#file.handle = await open(this.#file.path, "a");
    await this.#file.handle.write(text);
  }

  #settleWaiters(): void {
    const done = this.#waiters.filter(
      (w) => w.target <= this.committed || (this.#stopping && this.#rows === 0),
    );
    this.#waiters = this.#waiters.filter((w) => !done.includes(w));
    for (const w of done) w.resolve();
  }

  async #resetBuffer(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    this.#rows = 0;
    this.#bytes = 0;
    this.#hours = new Map();
    if (file) {
      await file.handle?.close();
      await rm(file.path, { force: true });
    }
  }

  /** Deletes lake files of this dataset that no commit registered (left by a crash before commit). */
  async #removeOrphans(): Promise<void> {
    const o = this.#o;
    const live = await o.catalog.registeredPaths();
    const objects = await o.lake.list(datasetPrefix(o.dataset.ref));
    const before = Date.now() - (o.orphanMinAgeMs ?? 0);
    let removed = 0;
    for (const obj of objects) {
      if (!live.has(obj.key) && obj.modified <= before) {
        await o.lake.delete(obj.key);
        removed++;
      }
    }
    if (removed > 0)
      o.log.info(
        { dataset: this.#name(), removed },
        "removed uncommitted files left by an earlier crash",
      );
  }

  /** One past the last stored position of this lander's partition. */
  #end(): Promise<number> {
    const o = this.#o;
    return this.#select.partition === undefined
      ? o.stream.end(o.streamName)
      : o.stream.end(o.streamName, this.#partition);
  }

  #name(): string {
    return `${this.#o.dataset.ref.layer}.${this.#o.dataset.ref.name}`;
  }
}

/** Records read as a block; `positions` when they are not consecutive (a partition's records). */
interface Block extends RecordBatch {
  readonly positions?: readonly number[];
}

/** Reads blocks of records, from a backend that stores them so or by grouping single records. */
async function readBatches(
  stream: Stream,
  name: string,
  from: number,
  options: ReadOptions,
): Promise<Block[]> {
  if (stream.capabilities.batches) return stream.readBatches(name, from, options);
  const records = await stream.read(name, from, options);
  if (records.length === 0) return [];
  const first = records[0]!.seq;
  const consecutive = records[records.length - 1]!.seq === first + records.length - 1;
  return [
    {
      first,
      count: records.length,
      times: records.map((r) => r.time),
      data: records.map((r) => r.data).join("\n"),
      ...(consecutive ? {} : { positions: records.map((r) => r.seq) }),
    },
  ];
}

/** Offset just past the `n`-th newline of newline-joined text. */
function lineOffset(text: string, n: number): number {
  let at = 0;
  for (let i = 0; i < n; i++) at = text.indexOf("\n", at) + 1;
  return at;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
