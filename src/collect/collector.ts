// The one ingest path every endpoint uses: normalize, dead-letter the invalid, append durably, report per event.
import type { StreamPlan } from "../config/index.js";
import type { Stream } from "../backends/contracts/index.js";
import { TributaryError } from "../errors.js";
import { metrics } from "../telemetry.js";
import { normalize } from "./normalize.js";
import { uuidv7 } from "./event-id.js";

/** One incoming event: a parsed value, or the raw text of one that did not parse. */
export type IngestItem =
  | { readonly value: unknown; readonly size: number }
  | { readonly raw: string; readonly reason: string };

/** What became of one event. */
export interface ItemResult {
  readonly id: string;
  readonly seq: number;
  readonly status: "stored" | "duplicate" | "dead_lettered";
  readonly reason?: string;
}

/** A dead letter as the lake holds it (`dlq.<stream>`). */
export interface DeadLetter {
  /** Its `_event_id`, kept by the replayed event. */
  readonly id: string;
  /** The event as received (`_raw`). */
  readonly raw: string;
  /** When it was first received (epoch ms): the replayed event's `_received_at`. */
  readonly receivedAt: number;
}

/** What became of a replayed dead letter. */
export interface ReplayResult {
  readonly id: string;
  readonly status: "stored" | "duplicate" | "invalid";
  readonly reason?: string;
}

/** The stream that holds a stream's dead letters. */
export function deadLetterStream(stream: string): string {
  return `${stream}.dlq`;
}

/**
 * Validates events, appends the valid ones to their stream and the invalid ones (with the reason
 * and original bytes) to its dead-letter stream, and resolves when both are durable.
 *
 * @example
 * const results = await collector.ingest("flights", [{ value: { flight_id: "F1" }, size: 17 }]);
 */
export class Collector {
  readonly #streams: ReadonlyMap<string, StreamPlan>;
  readonly #stream: Stream;
  readonly #maxInflight: number;
  readonly #maxEventSize: number;
  #inflight = 0;
  #accepting = true;

  constructor(
    streams: ReadonlyMap<string, StreamPlan>,
    stream: Stream,
    limits: { maxInflightBytes: number; maxEventSize: number },
  ) {
    this.#streams = streams;
    this.#stream = stream;
    this.#maxInflight = limits.maxInflightBytes;
    this.#maxEventSize = limits.maxEventSize;
  }

  /** The plan of a stream, or TRB_COLLECT_STREAM_NOT_FOUND. */
  plan(name: string): StreamPlan {
    const plan = this.#streams.get(name);
    if (!plan)
      throw new TributaryError(
        "TRB_COLLECT_STREAM_NOT_FOUND",
        `No stream \`${name}\`; declare it under \`streams\`.`,
      );
    return plan;
  }

  /**
   * Throws TRB_COLLECT_OVERLOADED when `bytes` more would pass the in-flight budget (one request is
   * always admitted when nothing is in flight). Routes call it with the body size before parsing,
   * so an overloaded server refuses without spending CPU on JSON.parse and validation.
   */
  admit(bytes: number): void {
    if (this.#inflight + bytes > this.#maxInflight && this.#inflight > 0) {
      throw new TributaryError("TRB_COLLECT_OVERLOADED", undefined, { retryAfter: 1 });
    }
  }

  /** Stops intake: later calls get TRB_HTTP_SHUTTING_DOWN. */
  stop(): void {
    this.#accepting = false;
  }

  /**
   * Tries dead letters again against the stream's current schema (after a fix). Valid ones are
   * appended to the stream under their dead-letter id, so replaying twice stores nothing twice
   * (the stream's dedup window, then the caller's check against the lake); invalid ones are
   * reported with the new reason and stay where they are (they are not dead-lettered again).
   */
  async replay(streamName: string, letters: readonly DeadLetter[]): Promise<ReplayResult[]> {
    if (!this.#accepting)
      throw new TributaryError("TRB_HTTP_SHUTTING_DOWN", undefined, { retryAfter: 1 });
    const plan = this.plan(streamName);
    const good: { id: string; time: number; data: string }[] = [];
    const out: ReplayResult[] = [];
    const slots: number[] = [];
    let bytes = 0;
    for (const letter of letters) {
      let value: unknown;
      try {
        value = JSON.parse(letter.raw);
      } catch (e) {
        out.push({ id: letter.id, status: "invalid", reason: `not JSON: ${(e as Error).message}` });
        continue;
      }
      const n = normalize(plan, value, letter.receivedAt, letter.id);
      if (!n.ok) {
        out.push({ id: letter.id, status: "invalid", reason: n.reason });
        continue;
      }
      slots.push(out.length);
      out.push({ id: letter.id, status: "stored" });
      good.push(n);
      bytes += n.data.length;
    }
    if (good.length === 0) return out;
    this.admit(bytes);
    this.#inflight += bytes;
    try {
      const results = await this.#stream.append(streamName, good);
      let duplicates = 0;
      results.forEach((r, i) => {
        const at = slots[i]!;
        if (r.duplicate) {
          duplicates++;
          out[at] = { id: out[at]!.id, status: "duplicate" };
        }
      });
      metrics.collectReceived.inc({ stream: streamName, endpoint: "replay" }, good.length);
      metrics.collectEmitted.inc({ stream: streamName }, good.length - duplicates);
      if (duplicates > 0) metrics.collectDuplicates.inc({ stream: streamName }, duplicates);
      return out;
    } finally {
      this.#inflight -= bytes;
    }
  }

  /** Ingests a batch; see the class comment. Throws TRB_COLLECT_OVERLOADED past the in-flight limit. */
  async ingest(
    streamName: string,
    items: readonly IngestItem[],
    endpoint: string,
    receivedAt = Date.now(),
  ): Promise<ItemResult[]> {
    if (!this.#accepting)
      throw new TributaryError("TRB_HTTP_SHUTTING_DOWN", undefined, { retryAfter: 1 });
    const plan = this.plan(streamName);
    const good: { id: string; time: number; data: string }[] = [];
    const bad: { id: string; time: number; data: string }[] = [];
    const slots: { kind: "good" | "bad"; index: number; reason?: string }[] = [];
    let bytes = 0;
    for (const item of items) {
      let reason: string;
      let raw: string;
      if ("raw" in item) {
        reason = item.reason;
        raw = item.raw;
      } else if (item.size > this.#maxEventSize) {
        reason = `event is ${item.size} bytes, over the ${this.#maxEventSize}-byte limit`;
        raw = JSON.stringify(item.value);
      } else {
        const n = normalize(plan, item.value, receivedAt);
        if (n.ok) {
          slots.push({ kind: "good", index: good.length });
          good.push(n);
          bytes += n.data.length;
          continue;
        }
        reason = n.reason;
        raw = JSON.stringify(item.value);
        const rec = deadLetter(n.id, receivedAt, reason, raw);
        slots.push({ kind: "bad", index: bad.length, reason });
        bad.push(rec);
        bytes += rec.data.length;
        continue;
      }
      const rec = deadLetter(uuidv7(receivedAt), receivedAt, reason, raw);
      slots.push({ kind: "bad", index: bad.length, reason });
      bad.push(rec);
      bytes += rec.data.length;
    }
    this.admit(bytes);
    metrics.collectReceived.inc({ stream: streamName, endpoint }, items.length);
    this.#inflight += bytes;
    metrics.collectInflightBytes.set(this.#inflight);
    const started = performance.now();
    try {
      const [goodResults, badResults] = await Promise.all([
        good.length > 0 ? this.#stream.append(streamName, good) : [],
        bad.length > 0 ? this.#stream.append(deadLetterStream(streamName), bad) : [],
      ]);
      metrics.collectAckSeconds.observe((performance.now() - started) / 1000);
      let duplicates = 0;
      const out = slots.map((s): ItemResult => {
        if (s.kind === "good") {
          const r = goodResults[s.index]!;
          if (r.duplicate) duplicates++;
          return {
            id: good[s.index]!.id,
            seq: r.seq,
            status: r.duplicate ? "duplicate" : "stored",
          };
        }
        const r = badResults[s.index]!;
        return { id: bad[s.index]!.id, seq: r.seq, status: "dead_lettered", reason: s.reason! };
      });
      metrics.collectEmitted.inc({ stream: streamName }, good.length - duplicates);
      if (duplicates > 0) metrics.collectDuplicates.inc({ stream: streamName }, duplicates);
      if (bad.length > 0) metrics.collectDeadLettered.inc({ stream: streamName }, bad.length);
      return out;
    } finally {
      this.#inflight -= bytes;
      metrics.collectInflightBytes.set(this.#inflight);
    }
  }
}

function deadLetter(
  id: string,
  receivedAt: number,
  reason: string,
  raw: string,
): { id: string; time: number; data: string } {
  const at = new Date(receivedAt).toISOString();
  return {
    id,
    time: receivedAt,
    data: JSON.stringify({
      _event_id: id,
      _received_at: at,
      _event_time: at,
      _reason: reason,
      _raw: raw,
    }),
  };
}
