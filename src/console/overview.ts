// The console's overview: ingest rates, consumer lag and freshness, speed and batch watermarks, errors, storage.
import type { CatalogStore, Stream } from "../backends/contracts/index.js";
import { describeCatalog, type DatasetSummary } from "../catalog/index.js";
import type { RecentLog, RecentEntry } from "./recent-log.js";

/** How often stream ends are sampled (for rates and freshness). */
export const SAMPLE_INTERVAL_MS = 2_000;
/** The window an ingest rate is measured over. */
const RATE_WINDOW_MS = 10_000;
/** Samples kept per stream partition (freshness looks back this far: 15 min at 2 s). */
const MAX_SAMPLES = 450;

/** Where one reader of a stream partition stands. */
export interface ReaderPosition {
  readonly partition: number;
  /** Next position it will read (every record before it is done). */
  readonly position: number;
}

/** One view's speed layer, per partition. */
export interface SpeedShardStatus extends ReaderPosition {
  /** Newest event time folded in (epoch ms), null before any. */
  readonly maxTime: number | null;
  /** When its state was last checkpointed (ISO), null when served from memory or never saved. */
  readonly savedAt: string | null;
}

/** A view as the overview shows it. */
export interface OverviewView {
  readonly name: string;
  readonly stream: string;
  readonly allowedLatenessMs: number;
}

/** What the overview reads; the runtime wires it. */
export interface OverviewSources {
  readonly catalog: CatalogStore;
  readonly stream: Stream;
  readonly partitions: number;
  /** Streams with the stream holding their dead letters. */
  readonly streams: readonly { name: string; deadLetters: string }[];
  readonly views: readonly OverviewView[];
  /** The consumer name land commits positions under. */
  readonly landConsumer: string;
  readonly speedStatus: (view: string) => Promise<SpeedShardStatus[]>;
  /** Start of the first bucket the batch layer has not covered (-Infinity: none). */
  readonly batchUntil: (view: string) => Promise<number>;
  /** The run in progress in this process, if any. */
  readonly running: () =>
    | { runId: number; total: number; done: number; failed: number; running: readonly string[] }
    | undefined;
  readonly recent: RecentLog;
  /** Storage tier of the lake's files (e.g. `local`, `s3`). */
  readonly tier: string;
}

/** The overview as `GET /v1/console/overview` answers it (snake_case, as the rest of the API). */
export interface Overview {
  readonly now: string;
  readonly streams: {
    name: string;
    /** Events appended to the stream so far (all partitions). */
    end: number | null;
    rate: number | null;
    dead_letters: number;
    consumers: {
      name: string;
      partition: number;
      position: number;
      lag: number;
      freshness_ms: number | null;
    }[];
  }[];
  readonly speed: {
    view: string;
    stream: string;
    newest_event_time: string | null;
    watermark: string | null;
    checkpoint_at: string | null;
    lag: number;
    freshness_ms: number | null;
  }[];
  readonly batch: { view: string; batch_until: string | null }[];
  readonly runs: {
    latest: Record<string, unknown> | null;
    running: Record<string, unknown> | null;
    not_fresh: number;
  };
  readonly errors: RecentEntry[];
  readonly storage: {
    dataset: string;
    layer: string;
    tier: string;
    files: number;
    rows: number;
    bytes: number;
  }[];
}

interface Sample {
  readonly at: number;
  readonly end: number;
}

/**
 * Samples stream ends every 2 s and answers the overview from them and the catalog. Rates are the
 * growth of the log over the last 10 s. Freshness of a reader is honest about what it has: the
 * time since the newest sample whose end it has reached, i.e. every event appended before then is
 * applied (0 when it has reached the current end). Answers are cached for a second, so many open
 * consoles cost one computation.
 */
export class OverviewSampler {
  readonly #s: OverviewSources;
  /** `<stream>#<partition>` → samples, oldest first. */
  readonly #samples = new Map<string, Sample[]>();
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<void> | undefined;
  #storage: { snapshot: number; datasets: DatasetSummary[] } | undefined;
  #cached: { at: number; overview: Promise<Overview> } | undefined;

  constructor(sources: OverviewSources) {
    this.#s = sources;
  }

  /** Starts sampling (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer) return;
    void this.#sample();
    this.#timer = setInterval(() => void this.#sample(), SAMPLE_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The overview now (computed at most once a second). */
  overview(): Promise<Overview> {
    const now = Date.now();
    if (this.#cached && now - this.#cached.at < 1_000) return this.#cached.overview;
    const overview = this.#compute();
    this.#cached = { at: now, overview };
    overview.catch(() => {
      if (this.#cached?.overview === overview) this.#cached = undefined;
    });
    return overview;
  }

  /** Newest event time (epoch ms) the speed layer has seen of a view, or undefined. */
  async newestEventTime(view: string): Promise<number | undefined> {
    const shards = await this.#s.speedStatus(view);
    const times = shards.map((s) => s.maxTime).filter((t): t is number => t !== null);
    return times.length > 0 ? Math.max(...times) : undefined;
  }

  /** Dataset summaries of the latest snapshot (recomputed only when a commit has happened). */
  async storage(): Promise<DatasetSummary[]> {
    const snapshot = await this.#s.catalog.latestSnapshot();
    if (this.#storage?.snapshot !== snapshot) {
      const described = await describeCatalog(this.#s.catalog);
      this.#storage = { snapshot, datasets: described.datasets };
    }
    return this.#storage.datasets;
  }

  #sample(): Promise<void> {
    this.#sampling ??= (async () => {
      const at = Date.now();
      const names = this.#s.streams.flatMap((s) => [s.name, s.deadLetters]);
      for (const name of names)
        for (let k = 0; k < this.#s.partitions; k++) {
          const end = await this.#end(name, k);
          const key = `${name}#${k}`;
          const list = this.#samples.get(key) ?? [];
          list.push({ at, end });
          if (list.length > MAX_SAMPLES) list.shift();
          this.#samples.set(key, list);
        }
    })()
      .catch(() => undefined) // A backend hiccup skips one sample; the next one measures again.
      .finally(() => {
        this.#sampling = undefined;
      });
    return this.#sampling;
  }

  #end(stream: string, partition: number): Promise<number> {
    return this.#s.partitions === 1
      ? this.#s.stream.end(stream)
      : this.#s.stream.end(stream, partition);
  }

  /** Events per second appended to a stream over the last window (null: not enough samples). */
  #rate(stream: string): number | null {
    let total = 0;
    let measured = false;
    for (let k = 0; k < this.#s.partitions; k++) {
      const list = this.#samples.get(`${stream}#${k}`) ?? [];
      const last = list.at(-1);
      if (!last) continue;
      const first = list.find((x) => x.at >= last.at - RATE_WINDOW_MS) ?? last;
      if (last.at - first.at < SAMPLE_INTERVAL_MS / 2) continue;
      total += ((last.end - first.end) * 1000) / (last.at - first.at);
      measured = true;
    }
    return measured ? Math.round(total * 10) / 10 : null;
  }

  /** Milliseconds behind for a reader at `position` of a partition whose end is `end`. */
  #freshness(
    stream: string,
    partition: number,
    position: number,
    end: number,
    now: number,
  ): number | null {
    if (position >= end) return 0;
    const list = this.#samples.get(`${stream}#${partition}`) ?? [];
    for (let i = list.length - 1; i >= 0; i--)
      if (list[i]!.end <= position) return now - list[i]!.at;
    return null; // Behind every sample kept: more than the window; unknown how much.
  }

  async #compute(): Promise<Overview> {
    const s = this.#s;
    const now = Date.now();
    const storage = await this.storage();
    const byName = new Map(storage.map((d) => [d.name, d]));
    const parts = Array.from({ length: s.partitions }, (_, k) => k);
    // Each stream partition's end and each view's shards, read once for the whole overview.
    const ends = new Map<string, number>();
    await Promise.all(
      s.streams.flatMap((st) =>
        [st.name, st.deadLetters].flatMap((name) =>
          parts.map(async (k) => ends.set(`${name}#${k}`, await this.#end(name, k))),
        ),
      ),
    );
    const endOf = (stream: string, k: number): number => ends.get(`${stream}#${k}`) ?? 1;
    const shardsOf = new Map(
      await Promise.all(s.views.map(async (v) => [v.name, await s.speedStatus(v.name)] as const)),
    );

    const streams = await Promise.all(
      s.streams.map(async (st) => {
        const consumers: Overview["streams"][number]["consumers"] = [];
        let end = 0;
        let pendingDead = 0;
        for (const k of parts) {
          const [e, de] = [endOf(st.name, k), endOf(st.deadLetters, k)];
          const [landed, landedDead] = await Promise.all([
            s.catalog.position(s.landConsumer, st.name, k),
            s.catalog.position(s.landConsumer, st.deadLetters, k),
          ]);
          end += e - 1;
          pendingDead += Math.max(0, de - Math.max(1, landedDead));
          const position = Math.max(1, landed);
          consumers.push({
            name: s.landConsumer,
            partition: k,
            position,
            lag: Math.max(0, e - position),
            freshness_ms: this.#freshness(st.name, k, position, e, now),
          });
        }
        for (const v of s.views.filter((v) => v.stream === st.name)) {
          for (const sh of shardsOf.get(v.name) ?? []) {
            const e = endOf(st.name, sh.partition);
            const position = Math.max(1, sh.position);
            consumers.push({
              name: `speed.${v.name}`,
              partition: sh.partition,
              position,
              lag: Math.max(0, e - position),
              freshness_ms: this.#freshness(st.name, sh.partition, position, e, now),
            });
          }
        }
        return {
          name: st.name,
          end,
          rate: this.#rate(st.name),
          dead_letters: (byName.get(`dlq.${st.name}`)?.rows ?? 0) + pendingDead,
          consumers,
        };
      }),
    );

    const speed = s.views.map((v) => {
      const shards = shardsOf.get(v.name) ?? [];
      const times = shards.map((x) => x.maxTime).filter((t): t is number => t !== null);
      const newest = times.length > 0 ? Math.max(...times) : null;
      const saved = shards.map((x) => x.savedAt).filter((t): t is string => t !== null);
      let lag = 0;
      let freshness: number | null = shards.length > 0 ? 0 : null;
      for (const sh of shards) {
        const e = endOf(v.stream, sh.partition);
        const position = Math.max(1, sh.position);
        lag += Math.max(0, e - position);
        const f = this.#freshness(v.stream, sh.partition, position, e, now);
        freshness = f === null || freshness === null ? null : Math.max(freshness, f);
      }
      return {
        view: v.name,
        stream: v.stream,
        newest_event_time: newest === null ? null : new Date(newest).toISOString(),
        watermark: newest === null ? null : new Date(newest - v.allowedLatenessMs).toISOString(),
        checkpoint_at: saved.length > 0 ? saved.sort().at(0)! : null,
        lag,
        freshness_ms: freshness,
      };
    });

    const batch = await Promise.all(
      s.views.map(async (v) => {
        const until = await s.batchUntil(v.name);
        return {
          view: v.name,
          batch_until: Number.isFinite(until) ? new Date(until).toISOString() : null,
        };
      }),
    );

    const [latest] = await s.catalog.runs(1);
    const states = await s.catalog.partitions();
    const progress = s.running();
    return {
      now: new Date(now).toISOString(),
      streams,
      speed,
      batch,
      runs: {
        latest: latest
          ? {
              id: latest.id,
              trigger: latest.trigger,
              status: latest.status,
              started_at: latest.startedAt,
              finished_at: latest.finishedAt,
              days: latest.days,
              error: latest.error,
            }
          : null,
        running:
          progress && progress.runId > 0
            ? {
                run_id: progress.runId,
                total: progress.total,
                done: progress.done,
                failed: progress.failed,
                running: progress.running,
              }
            : null,
        not_fresh: states.filter((p) => p.status !== "fresh").length,
      },
      errors: s.recent.entries(),
      storage: storage.map((d) => ({
        dataset: d.name,
        layer: d.layer,
        tier: s.tier,
        files: d.files,
        rows: d.rows,
        bytes: d.bytes,
      })),
    };
  }
}
