// The distributed Stream on NATS JetStream: a JetStream stream per stream, positions in a KV bucket.
import type {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  StreamConfig,
} from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import { TributaryError } from "../../errors.js";
import {
  checkPartition,
  partitionOf,
  type AppendResult,
  type ReadOptions,
  type RecordBatch,
  type StoredRecord,
  type Stream,
  type StreamCapabilities,
  type StreamRecord,
  type StreamSettings,
} from "../contracts/index.js";
import { connectNats, type NatsClient, type NatsOptions } from "./connection.js";

/** Options of `NatsStream.open`. */
export interface NatsStreamOptions extends NatsOptions {
  /**
   * Namespace of every name this backend makes on the server (JetStream streams `TRB_<prefix>_…`,
   * subjects `<prefix>.…`, the bucket `TRB_<prefix>_positions`), so projects and test runs can
   * share a server. Letters, digits and `-`, at most 32.
   */
  readonly prefix: string;
  /**
   * Partitions per stream (default 1): a record goes to subject `<prefix>.<stream>.<p>`, p =
   * `partitionOf(id, n)`. Positions stay the JetStream stream's sequence, one order over all
   * partitions; a partitioned read filters on its subject.
   */
  readonly partitions?: number;
  /**
   * Copies JetStream keeps of each stream and of the positions bucket (default 1, the only value a
   * single server accepts). Use 3 in a cluster: the server acknowledges a publish once the copies
   * are written to the OS, not fsync'd, so durability comes from replicas.
   */
  readonly replicas?: number;
}

/** Header carrying a record's event time (epoch ms, decimal). The id travels as `Nats-Msg-Id`. */
const TIME_HEADER = "Trb-Time";
const ID_HEADER = "Nats-Msg-Id";

const PREFIX = /^[A-Za-z0-9-]{1,32}$/;

/** JetStream API error codes this backend reacts to. */
const STREAM_NAME_IN_USE = 10058;
const WRONG_LAST_SEQUENCE = 10071;

/** A reader's consumer is reused only while it was used this recently (the server drops it later). */
const READER_REUSE_MS = 30_000;
/** Inactivity after which the server deletes a reader's consumer. */
const READER_INACTIVE_MS = 120_000;
/**
 * Idle readers kept per stream and partition (or per stream, for readers of every partition): one
 * per reader following it (land, speed) is enough.
 */
const IDLE_READERS = 4;
/** Tries of a compare-and-set on the positions bucket before giving up. */
const CAS_TRIES = 20;
/** Tries of a publish whose duplicate ack has no position yet (the original is being replicated). */
const DUPLICATE_TRIES = 10;

/** The partition of a reader of every partition. */
const ALL = -1;

/**
 * An ephemeral pull consumer that delivers from `next` on, of one partition (its subject) or of
 * `ALL`, and since when it sits idle.
 */
interface Reader {
  readonly consumer: string;
  readonly partition: number;
  next: number;
  idleSince: number;
}

interface OpenStream {
  settings: StreamSettings;
  /** The JetStream stream's name. */
  readonly js: string;
  /** The stream's name as a token of names and subjects. */
  readonly token: string;
  /** Subjects are `<base>.<partition>`. */
  readonly base: string;
  /**
   * Readers not in use, oldest first, by partition (`ALL` for readers of every partition): a
   * reader only ever serves reads of its own partition.
   */
  readonly idle: Map<number, Reader[]>;
}

/** A publish acknowledgement, or the error the server answered instead. */
type Ack = { seq: number; duplicate: boolean } | { error: string };

/** How a pull request ended. */
type PullEnd = "full" | "empty" | "expired" | "aborted" | "gone";

/**
 * Stream on NATS JetStream (server 2.9 or later). Each stream is one JetStream stream with file
 * storage, `replicas` copies and subjects `<prefix>.<stream>.<partition>`; a position is the
 * JetStream stream sequence. An append publishes every record (message id = record id, so the
 * stream's duplicate window deduplicates retries) without waiting in between, then waits for all
 * acknowledgements. Reads pull from ephemeral consumers that start at the position asked for and
 * are kept for the next read of the same partition from where the last one ended; a read of one
 * partition uses a consumer filtered on its subject. Consumer positions live in the KV
 * bucket `TRB_<prefix>_positions`; `trim` purges what every registered consumer passed.
 *
 * @example
 * const log = await NatsStream.open({ servers: "nats://127.0.0.1:4222", prefix: "prod" });
 * await log.open({ name: "flights", dedupWindowMs: 600_000, dedupMaxIds: 1e6, retainMs: 3.6e6 });
 * await log.append("flights", [{ id: "F1", time: Date.now(), data: "{}" }]);
 */
export class NatsStream implements Stream {
  readonly capabilities: StreamCapabilities;
  readonly #client: NatsClient;
  readonly #prefix: string;
  readonly #replicas: number;
  readonly #bucket: string;
  readonly #streams = new Map<string, OpenStream>();
  /** Appends and reads in flight, which close waits for. */
  readonly #inFlight = new Set<Promise<void>>();
  /** Aborts waiting reads on close. */
  readonly #closing = new AbortController();
  #bucketReady: Promise<void> | undefined;
  #closed = false;

  private constructor(client: NatsClient, prefix: string, partitions: number, replicas: number) {
    this.#client = client;
    this.#prefix = prefix;
    this.#replicas = replicas;
    this.#bucket = `TRB_${prefix}_positions`;
    this.capabilities = { partitions, batches: false };
  }

  /** Connects and checks the options; throws TRB_CONFIG_INVALID for a bad prefix or count. */
  static async open(options: NatsStreamOptions): Promise<NatsStream> {
    const { prefix, partitions = 1, replicas = 1 } = options;
    if (!PREFIX.test(prefix)) {
      throw new TributaryError(
        "TRB_CONFIG_INVALID",
        `NATS prefix ${JSON.stringify(prefix)} must be 1 to 32 letters, digits or "-"`,
      );
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new TributaryError("TRB_CONFIG_INVALID", `NATS partitions must be an integer >= 1`);
    }
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
      throw new TributaryError("TRB_CONFIG_INVALID", `NATS replicas must be an integer 1 to 5`);
    }
    return new NatsStream(await connectNats(options), prefix, partitions, replicas);
  }

  /**
   * Creates the JetStream stream, or updates it when its settings changed (the duplicate window);
   * an unchanged stream is left alone, so concurrent opens from many processes agree.
   */
  async open(settings: StreamSettings): Promise<void> {
    this.#checkOpen();
    const known = this.#streams.get(settings.name);
    if (known && known.settings.dedupWindowMs === settings.dedupWindowMs) {
      known.settings = settings;
      return;
    }
    const token = nameToken(settings.name);
    const js = `TRB_${this.#prefix}_${token}`;
    const base = `${this.#prefix}.${token}`;
    await this.#ensure(
      {
        name: js,
        description: `Tributary stream ${settings.name}`,
        subjects: [`${base}.*`],
        storage: "file" as StorageType,
        num_replicas: this.#replicas,
        retention: "limits" as RetentionPolicy,
        discard: "old" as DiscardPolicy,
        duplicate_window: nanos(settings.dedupWindowMs),
        // Only trim removes records, and only from the front: positions stay contiguous.
        deny_delete: true,
        deny_purge: false,
      },
      `open stream ${settings.name}`,
    );
    this.#streams.set(settings.name, {
      settings,
      js,
      token,
      base,
      idle: known?.idle ?? new Map(),
    });
  }

  async append(stream: string, records: readonly StreamRecord[]): Promise<AppendResult[]> {
    if (this.#closed) throw new TributaryError("TRB_STREAM_CLOSED");
    const s = this.#get(stream);
    // Publishing starts before the first await, so close() sees this append in flight.
    return this.#track(this.#publish(s, records));
  }

  async read(stream: string, from: number, options: ReadOptions): Promise<StoredRecord[]> {
    const partition = this.#partition(options.partition);
    this.#checkOpen();
    const s = this.#get(stream);
    if (options.max < 1) return [];
    return this.#track(this.#fetch(s, Math.max(1, Math.floor(from)), options, partition));
  }

  async readBatches(stream: string, from: number, options: ReadOptions): Promise<RecordBatch[]> {
    const batches: RecordBatch[] = [];
    let times: number[] = [];
    let data: string[] = [];
    let first = 0;
    const cut = (): void => {
      if (data.length > 0)
        batches.push({ first, count: data.length, times, data: data.join("\n") });
    };
    for (const r of await this.read(stream, from, options)) {
      if (r.seq !== first + data.length) {
        cut();
        [first, times, data] = [r.seq, [], []];
      }
      times.push(r.time);
      data.push(r.data);
    }
    cut();
    return batches;
  }

  /**
   * `last_seq + 1` of the JetStream stream; with a partition, the sequence of the last message on
   * its subject (a get by `last_by_subj`) + 1, or 1 when the subject holds none.
   */
  async end(stream: string, partition?: number): Promise<number> {
    const p = this.#partition(partition);
    this.#checkOpen();
    const s = this.#get(stream);
    const what = `read the end of ${stream}`;
    if (p === ALL) {
      const info = await this.#api(what, () => this.#client.jsm.streams.info(s.js));
      return info.state.last_seq + 1;
    }
    const last = await this.#api(what, () =>
      this.#client.jsm.streams.getMessage(s.js, { last_by_subj: `${s.base}.${p}` }),
    );
    return last ? last.seq + 1 : 1;
  }

  async register(stream: string, consumer: string): Promise<void> {
    this.#checkOpen();
    const subject = this.#positionSubject(this.#get(stream), consumer);
    await this.#ensureBucket();
    try {
      // Stored only when the key has no value yet: registering again keeps the position.
      await this.#client.js.publish(subject, "1", { expect: { lastSubjectSequence: 0 } });
    } catch (e) {
      if (apiCode(e) !== WRONG_LAST_SEQUENCE) throw failure(`register ${consumer} on ${stream}`, e);
    }
  }

  async commit(stream: string, consumer: string, position: number): Promise<void> {
    this.#checkOpen();
    const subject = this.#positionSubject(this.#get(stream), consumer);
    await this.#ensureBucket();
    for (let i = 0; i < CAS_TRIES; i++) {
      const stored = await this.#position(subject);
      if (stored && stored.position >= position) return;
      try {
        // Compare-and-set on the key's last revision: two committers never move it back.
        await this.#client.js.publish(subject, String(position), {
          expect: { lastSubjectSequence: stored?.revision ?? 0 },
        });
        return;
      } catch (e) {
        if (apiCode(e) !== WRONG_LAST_SEQUENCE) throw failure(`commit ${consumer} on ${stream}`, e);
      }
    }
    throw new TributaryError(
      "TRB_INTERNAL",
      `commit of ${consumer} on ${stream} lost ${CAS_TRIES} races in a row; retry it`,
    );
  }

  async trim(stream: string, now = Date.now()): Promise<number> {
    this.#checkOpen();
    const s = this.#get(stream);
    await this.#ensureBucket();
    const what = `trim ${stream}`;
    const { jsm } = this.#client;
    const filter = `$KV.${this.#bucket}.${s.token}.*`;
    const bucket = await this.#api(what, () =>
      jsm.streams.info(`KV_${this.#bucket}`, { subjects_filter: filter }),
    );
    const subjects = Object.keys(bucket.state.subjects ?? {});
    if (subjects.length === 0) return 0;
    const stored = await Promise.all(subjects.map((subject) => this.#position(subject)));
    let cut = Math.min(...stored.map((p) => p?.position ?? 1));
    const { state } = await this.#api(what, () => jsm.streams.info(s.js));
    // Purging past the last record would move the next position: stop at the end.
    cut = Math.min(cut, state.last_seq + 1);
    if (cut <= state.first_seq) return 0;
    cut = await this.#ageCut(s, state.first_seq, cut, now - s.settings.retainMs);
    if (cut <= state.first_seq) return 0;
    const purged = await this.#api(what, () => jsm.streams.purge(s.js, { seq: cut }));
    return purged.purged;
  }

  /**
   * Stops accepting appends and reads, ends waiting reads, waits for the calls in flight and
   * drains the connection. Readers' consumers are left to the server, which drops them once
   * inactive.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    await Promise.all(this.#inFlight);
    const { nc, connected } = this.#client;
    if (nc.isClosed()) return;
    // A connection that is down cannot drain (it would wait for a reconnect); nothing is pending
    // once the calls in flight settled, so closing it is all that is left to do.
    if (!connected()) return nc.close();
    try {
      await nc.drain();
    } catch {
      // It went down while draining: the same as above.
      await nc.close();
    }
  }

  /** Returns `call`, noting it in flight until it settles. */
  #track<T>(call: Promise<T>): Promise<T> {
    const settled = call.then(
      () => undefined,
      () => undefined, // the caller gets the rejection; close only waits for it
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
    return call;
  }

  /**
   * Publishes every record without waiting in between (one connection keeps their order), then
   * waits for every acknowledgement. The acks come back on one inbox per call, `<inbox>.<i>`: a
   * request per record through the client's `js.publish` costs four times as much.
   */
  async #publish(s: OpenStream, records: readonly StreamRecord[]): Promise<AppendResult[]> {
    const n = records.length;
    if (n === 0) return [];
    const partitions = this.capabilities.partitions;
    // The first record of each id in this call; later ones report its position as duplicates
    // (a cluster answers a duplicate of a message still being replicated with no position).
    const firstOf = new Map<string, number>();
    const sent: { subject: string; record: StreamRecord }[] = [];
    const ackOf: number[] = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      const seen = firstOf.get(r.id);
      if (seen !== undefined) {
        ackOf[i] = -1 - ackOf[seen]!;
        continue;
      }
      firstOf.set(r.id, i);
      ackOf[i] = sent.length;
      const subject = `${s.base}.${partitions === 1 ? 0 : partitionOf(r.id, partitions)}`;
      sent.push({ subject, record: r });
    }
    const what = `append to ${s.settings.name}`;
    const acks = await this.#publishAll(sent).catch((e: unknown) => {
      throw failure(what, e);
    });
    for (let k = 0; k < acks.length; k++) {
      const ack = acks[k]!;
      if ("error" in ack) throw failure(what, new Error(ack.error));
      if (ack.duplicate && ack.seq === 0) {
        acks[k] = await this.#publishAgain(sent[k]!.subject, sent[k]!.record).catch(
          (e: unknown) => {
            throw failure(what, e);
          },
        );
      }
    }
    return ackOf.map((k) => {
      const ack = acks[k < 0 ? -1 - k : k] as { seq: number; duplicate: boolean };
      return { seq: ack.seq, duplicate: k < 0 || ack.duplicate };
    });
  }

  /**
   * Publishes `sent` with replies to `<inbox>.<index>`; resolves with every ack (or its error)
   * once all came, rejects when none came for `timeoutMs` or the connection failed.
   */
  #publishAll(sent: readonly { subject: string; record: StreamRecord }[]): Promise<Ack[]> {
    const { nc, headers, createInbox, timeoutMs } = this.#client;
    const acks = new Array<Ack | undefined>(sent.length);
    let pending = sent.length;
    return new Promise<Ack[]>((resolve, reject) => {
      const inbox = createInbox();
      let timer: NodeJS.Timeout | undefined;
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          sub.unsubscribe();
          reject(new Error(`${pending} of ${sent.length} publishes got no ack in ${timeoutMs} ms`));
        }, timeoutMs);
      };
      const sub = nc.subscribe(`${inbox}.*`, {
        max: sent.length,
        callback: (err, msg) => {
          if (err) {
            clearTimeout(timer);
            return reject(err);
          }
          const k = Number(msg.subject.slice(inbox.length + 1));
          if (!(k >= 0 && k < sent.length) || acks[k] !== undefined) return;
          acks[k] = parseAck(msg);
          if (--pending > 0) return arm();
          clearTimeout(timer);
          resolve(acks as Ack[]);
        },
      });
      try {
        for (let k = 0; k < sent.length; k++) {
          const { subject, record } = sent[k]!;
          const h = headers();
          h.set(ID_HEADER, encodeId(record.id));
          h.set(TIME_HEADER, String(record.time));
          nc.publish(subject, record.data, { reply: `${inbox}.${k}`, headers: h });
        }
      } catch (e) {
        // Too large a record, or the connection closed: what was sent may be stored.
        sub.unsubscribe();
        return reject(e as Error);
      }
      arm();
    });
  }

  /** Publishes a record again until its duplicate ack carries the original's position. */
  async #publishAgain(subject: string, r: StreamRecord): Promise<Ack> {
    const { js, headers } = this.#client;
    const h = headers();
    h.set(TIME_HEADER, String(r.time));
    const options = { msgID: encodeId(r.id), headers: h };
    for (let i = 1; i < DUPLICATE_TRIES; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20 * i));
      const ack = await js.publish(subject, r.data, options);
      if (!ack.duplicate || ack.seq > 0) return { seq: ack.seq, duplicate: ack.duplicate };
    }
    throw new Error(`the stored copy of ${r.id} got no position in time`);
  }

  /**
   * Records of `partition` (or `ALL`) from `from` on: what is there, else (long poll) the first
   * that arrives, and more.
   */
  async #fetch(
    s: OpenStream,
    from: number,
    options: ReadOptions,
    partition: number,
  ): Promise<StoredRecord[]> {
    const waitMs = options.waitMs ?? 0;
    let reader = this.#checkout(s, from, partition);
    for (let attempt = 0; ; attempt++) {
      reader ??= await this.#newReader(s, from, partition);
      const out: StoredRecord[] = [];
      let end = await this.#pull(s, reader, out, options.max);
      if (end === "empty" && waitMs > 0 && !options.signal?.aborted && !this.#closed) {
        end = await this.#pull(s, reader, out, 1, waitMs, options.signal);
        if (end === "full" && options.max > 1) end = await this.#pull(s, reader, out, options.max);
      }
      if (end === "gone" && out.length === 0) {
        if (attempt > 0) {
          throw failure(`read ${s.settings.name}`, new Error("no reply to a pull request in time"));
        }
        // The server dropped the consumer (inactivity, restart, leader change): start anew.
        reader = undefined;
        continue;
      }
      if (end !== "aborted" && end !== "gone") {
        if (out.length > 0) reader.next = out[out.length - 1]!.seq + 1;
        this.#checkin(s, reader);
      }
      // An aborted long poll stays pending on the server and may take a record the reader then
      // never sees: that reader is not reused.
      return out;
    }
  }

  /**
   * One pull request: up to `batch` records into `out`. Without `waitMs` it returns what is there
   * now (no_wait); with it, it waits up to `waitMs` for the batch, ended early by `signal` or close.
   */
  #pull(
    s: OpenStream,
    reader: Reader,
    out: StoredRecord[],
    batch: number,
    waitMs = 0,
    signal?: AbortSignal,
  ): Promise<PullEnd> {
    const { nc, createInbox, timeoutMs } = this.#client;
    // Heartbeats tell a long poll that its consumer is alive; without a reply in time the
    // consumer is gone (a pull to a missing consumer gets no answer at all).
    const heartbeatMs = waitMs >= 1_000 ? Math.min(5_000, Math.floor(waitMs / 2)) : 0;
    const silenceMs = heartbeatMs > 0 ? 2 * heartbeatMs + timeoutMs : waitMs + timeoutMs;
    const request =
      waitMs > 0
        ? {
            batch,
            expires: nanos(waitMs),
            ...(heartbeatMs > 0 ? { idle_heartbeat: nanos(heartbeatMs) } : {}),
          }
        : { batch, no_wait: true };
    const start = out.length;
    return new Promise<PullEnd>((resolve) => {
      const inbox = createInbox();
      let timer: NodeJS.Timeout | undefined;
      const finish = (end: PullEnd): void => {
        clearTimeout(timer);
        sub.unsubscribe();
        signal?.removeEventListener("abort", abort);
        this.#closing.signal.removeEventListener("abort", abort);
        resolve(end);
      };
      const abort = (): void => finish("aborted");
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => finish("gone"), silenceMs);
      };
      const sub = nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return finish("gone");
          const code = msg.data.length === 0 ? (msg.headers?.code ?? 0) : 0;
          if (code === 100) return arm();
          if (code === 404) return finish("empty");
          if (code === 408) return finish(out.length > start ? "full" : "expired");
          // 409 (consumer deleted, leadership change, limits) and anything else: start anew.
          if (code !== 0) return finish("gone");
          out.push(decode(msg));
          if (out.length - start >= batch) return finish("full");
          arm();
        },
      });
      if (waitMs > 0) {
        if (signal?.aborted || this.#closing.signal.aborted) return finish("aborted");
        signal?.addEventListener("abort", abort);
        this.#closing.signal.addEventListener("abort", abort);
      }
      nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${s.js}.${reader.consumer}`, JSON.stringify(request), {
        reply: inbox,
      });
      arm();
    });
  }

  /**
   * An idle reader of `partition` whose next record is `from`, if one is recent enough to still
   * exist.
   */
  #checkout(s: OpenStream, from: number, partition: number): Reader | undefined {
    const idle = s.idle.get(partition);
    if (idle === undefined) return undefined;
    const now = Date.now();
    const live = idle.filter((r) => now - r.idleSince < READER_REUSE_MS);
    idle.splice(0, idle.length, ...live);
    const i = idle.findIndex((r) => r.next === from);
    return i < 0 ? undefined : idle.splice(i, 1)[0];
  }

  #checkin(s: OpenStream, reader: Reader): void {
    reader.idleSince = Date.now();
    let idle = s.idle.get(reader.partition);
    if (idle === undefined) s.idle.set(reader.partition, (idle = []));
    idle.push(reader);
    // Forgotten readers are deleted by the server once inactive.
    if (idle.length > IDLE_READERS) idle.shift();
  }

  /**
   * An ephemeral consumer delivering from `from`, of every subject or (`partition`) of the
   * partition's subject only: no acks, state in memory, one copy.
   */
  async #newReader(s: OpenStream, from: number, partition: number): Promise<Reader> {
    const info = await this.#api(`read ${s.settings.name}`, () =>
      this.#client.jsm.consumers.add(s.js, {
        deliver_policy: "by_start_sequence" as DeliverPolicy,
        opt_start_seq: from,
        ack_policy: "none" as AckPolicy,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(READER_INACTIVE_MS),
        ...(partition === ALL ? {} : { filter_subject: `${s.base}.${partition}` }),
      }),
    );
    return { consumer: info.name, partition, next: from, idleSince: Date.now() };
  }

  /**
   * The first position in `[first, cut)` stored at or after `threshold` (server time), or `cut`.
   * Positions are contiguous (only the front is ever purged) and stored times do not decrease, so
   * it checks the last one, then bisects.
   */
  async #ageCut(s: OpenStream, first: number, cut: number, threshold: number): Promise<number> {
    const storedAt = async (seq: number): Promise<number> => {
      const m = await this.#api(`trim ${s.settings.name}`, () =>
        this.#client.jsm.streams.getMessage(s.js, { seq }),
      );
      // Gone already: another process trimmed it.
      return m ? m.time.getTime() : -Infinity;
    };
    if ((await storedAt(cut - 1)) < threshold) return cut;
    let [lo, hi] = [first, cut - 1];
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await storedAt(mid)) < threshold) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The subject holding `consumer`'s position on `s`: key `<stream>.<consumer>` of the bucket. */
  #positionSubject(s: OpenStream, consumer: string): string {
    return `$KV.${this.#bucket}.${s.token}.${nameToken(consumer)}`;
  }

  /** The position stored under `subject` and the revision (bucket sequence) that stored it. */
  async #position(subject: string): Promise<{ position: number; revision: number } | undefined> {
    const m = await this.#api(`read the position at ${subject}`, () =>
      this.#client.jsm.streams.getMessage(`KV_${this.#bucket}`, { last_by_subj: subject }),
    );
    return m ? { position: Number(m.string()), revision: m.seq } : undefined;
  }

  /** Creates the positions bucket once per instance, laid out as a NATS KV bucket (history 1). */
  #ensureBucket(): Promise<void> {
    this.#bucketReady ??= this.#ensure(
      {
        name: `KV_${this.#bucket}`,
        description: "Tributary consumer positions, key <stream>.<consumer>",
        subjects: [`$KV.${this.#bucket}.>`],
        storage: "file" as StorageType,
        num_replicas: this.#replicas,
        retention: "limits" as RetentionPolicy,
        discard: "new" as DiscardPolicy,
        max_msgs_per_subject: 1,
        allow_rollup_hdrs: true,
        deny_delete: true,
        allow_direct: true,
      },
      "open the positions bucket",
    ).catch((e: unknown) => {
      this.#bucketReady = undefined;
      throw e;
    });
    return this.#bucketReady;
  }

  /** Adds a JetStream stream; one that exists with other settings is updated to these. */
  async #ensure(config: Partial<StreamConfig> & { name: string }, what: string): Promise<void> {
    const { jsm } = this.#client;
    try {
      await jsm.streams.add(config);
    } catch (e) {
      if (apiCode(e) !== STREAM_NAME_IN_USE) throw failure(what, e);
      await this.#api(what, async () => {
        const current = await jsm.streams.info(config.name);
        await jsm.streams.update(config.name, { ...current.config, ...config });
      });
    }
  }

  /** Runs a JetStream call, wrapping its failure. */
  async #api<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      throw failure(what, e);
    }
  }

  /**
   * A partition argument checked (RangeError) and as a reader's partition: `ALL` without one, and
   * for partition 0 of a single partition (its subject holds every record, no filter needed).
   */
  #partition(partition: number | undefined): number {
    const { partitions } = this.capabilities;
    checkPartition(partition, partitions);
    return partition === undefined || partitions === 1 ? ALL : partition;
  }

  #checkOpen(): void {
    if (this.#closed) throw new TributaryError("TRB_STREAM_CLOSED");
  }

  #get(stream: string): OpenStream {
    const s = this.#streams.get(stream);
    if (!s) throw new TributaryError("TRB_STREAM_UNKNOWN", `stream ${stream} is not open`);
    return s;
  }
}

/**
 * A name as one token of JetStream names and subjects: letters, digits and `_` stay, anything else
 * (`.`, `-`, …) becomes `-` and four hex digits of its UTF-16 unit, so distinct names stay distinct:
 * `flights.dlq` → `flights-002edlq`.
 */
export function nameToken(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, (c) => `-${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * An id as a header value: printable ASCII but `%` stays, anything else is percent-encoded UTF-8
 * (header values hold no line breaks). The empty id, which JetStream would not deduplicate, is `%`.
 */
function encodeId(id: string): string {
  if (id === "") return "%";
  return id.replace(/[^!-$&-~]+/g, (run) =>
    Array.from(
      Buffer.from(run, "utf8"),
      (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
    ).join(""),
  );
}

function decodeId(value: string): string {
  if (value === "%") return "";
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    // Not written by this backend (another publisher's message id): shown as it is.
    return value;
  }
}

/**
 * A delivered message as a record. Position and store time come from its reply subject,
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<seq>.<consumer seq>.<ns>.<pending>` (servers from 2.10
 * may add a domain and account hash after `ACK` and a token at the end). A message published
 * without this backend's headers reads with the id "" and its store time as event time.
 */
function decode(msg: Msg): StoredRecord {
  const tokens = (msg.reply ?? "").split(".");
  const at = tokens.length === 9 ? 5 : 7;
  const seq = Number(tokens[at]);
  const time = msg.headers?.get(TIME_HEADER);
  return {
    seq,
    id: decodeId(msg.headers?.get(ID_HEADER) ?? ""),
    time: time ? Number(time) : Math.floor(Number(tokens[at + 2]) / 1e6),
    data: msg.string(),
  };
}

/** A reply to a publish: `{"stream","seq","duplicate"?}`, `{"error":{…}}` or a status (503). */
function parseAck(msg: Msg): Ack {
  if (msg.data.length === 0) {
    const code = msg.headers?.code ?? 0;
    return {
      error:
        code === 503
          ? "no stream takes the subject"
          : `status ${code} ${msg.headers?.description ?? ""}`,
    };
  }
  const ack = JSON.parse(msg.string()) as {
    seq?: number;
    duplicate?: boolean;
    error?: { code?: number; err_code?: number; description?: string };
  };
  if (ack.error) {
    return {
      error: `${ack.error.description ?? "error"} (${ack.error.err_code ?? ack.error.code})`,
    };
  }
  return { seq: ack.seq ?? 0, duplicate: ack.duplicate === true };
}

function nanos(ms: number): number {
  return Math.round(ms * 1e6);
}

/** The JetStream API error code of `e` (a JetStreamApiError), if it is one. */
function apiCode(e: unknown): number | undefined {
  const err = e as { code?: unknown; apiError?: unknown } | undefined;
  return typeof err?.apiError === "function" && typeof err.code === "number" ? err.code : undefined;
}

function failure(what: string, e: unknown): TributaryError {
  if (e instanceof TributaryError) return e;
  const message = e instanceof Error ? e.message : String(e);
  // Timeouts, no responders, a leader election: the server side is unavailable for now, and a
  // retried append is deduplicated by its ids.
  return new TributaryError("TRB_STREAM_UNAVAILABLE", `NATS: cannot ${what}: ${message}`, {
    cause: e,
    retryAfter: 1,
  });
}
