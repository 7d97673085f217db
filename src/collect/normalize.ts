// Turns one incoming event into the stored record (envelope + typed fields + _extra), or a reason to dead-letter it.
import type { Column, StreamPlan } from "../config/index.js";
import { uuidv7 } from "./event-id.js";

/** A valid event, ready to append. */
export interface NormalizedEvent {
  readonly ok: true;
  readonly id: string;
  readonly time: number;
  /** The stored record: `{_event_id, _received_at, _event_time, <fields>, _extra}` as JSON. */
  readonly data: string;
}

/** An invalid event, bound for the dead-letter dataset. */
export interface RejectedEvent {
  readonly ok: false;
  readonly id: string;
  readonly reason: string;
}

const SEGMENT_TYPES = new Set(["track", "identify", "page", "screen", "group", "alias"]);
const SEGMENT_KEYS: Record<string, string> = {
  type: "type",
  event: "event",
  name: "name",
  userId: "user_id",
  anonymousId: "anonymous_id",
  properties: "properties",
  traits: "traits",
  context: "context",
};
/** Segment keys that become the envelope rather than columns or `_extra`. */
const SEGMENT_ENVELOPE = new Set(["messageId", "timestamp"]);

/** `YYYY-MM-DDTHH:MM:SS[.sss]Z`: ISO-8601 in UTC as DuckDB reads it. */
const CANONICAL_UTC = /^\d{4}-(0[1-9]|1[0-2])-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,3})?Z$/;
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * True when `s` is canonical UTC text naming a real calendar instant. Date.parse rolls invalid
 * dates over (Feb 30 → Mar 2, T24:00 → next day), so such text is re-formatted, never stored.
 */
function isCanonicalUtc(s: string): boolean {
  if (!CANONICAL_UTC.test(s)) return false;
  const y = Number(s.slice(0, 4));
  const m = Number(s.slice(5, 7));
  const d = Number(s.slice(8, 10));
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d >= 1 && d <= (m === 2 && !leap ? 28 : DAYS[m - 1]!);
}

/** Largest and smallest event times accepted (years 1000..9999), so Parquet timestamps stay valid. */
const MIN_TIME = Date.UTC(1000, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * Validates and normalizes one event against its stream. The event id is the stream's id field,
 * else `fallbackId` (a replayed dead letter keeps its id), else a new UUIDv7.
 * @example normalize(plan, { flight_id: "F1", date: "2001-01-01T00:01:00Z" }, Date.now())
 */
export function normalize(
  plan: StreamPlan,
  value: unknown,
  receivedAt: number,
  fallbackId?: string,
): NormalizedEvent | RejectedEvent {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return reject(undefined, "event is not a JSON object");
  }
  const event = value as Record<string, unknown>;
  return plan.format === "segment"
    ? normalizeSegment(plan, event, receivedAt, fallbackId)
    : normalizeJson(plan, event, receivedAt, fallbackId);
}

/** Per-plan constants of the hot path: quoted column names and the set of declared names. */
interface PlanCache {
  readonly keys: readonly string[];
  readonly declared: ReadonlySet<string>;
}
const planCache = new WeakMap<StreamPlan, PlanCache>();

function cacheOf(plan: StreamPlan): PlanCache {
  let c = planCache.get(plan);
  if (!c) {
    c = {
      keys: plan.fields.map((f) => `,${JSON.stringify(f.name)}:`),
      declared: new Set(plan.fields.map((f) => f.name)),
    };
    planCache.set(plan, c);
  }
  return c;
}

function normalizeJson(
  plan: StreamPlan,
  event: Record<string, unknown>,
  receivedAt: number,
  fallbackId: string | undefined,
): NormalizedEvent | RejectedEvent {
  const idValue = plan.idField === undefined ? undefined : event[plan.idField];
  const given = idOf(idValue);
  if (given === null)
    return reject(
      undefined,
      `${plan.idField} must be a string (1-256 characters, no line breaks) or an integer`,
    );
  const id = given ?? fallbackId ?? uuidv7(receivedAt);
  const cache = cacheOf(plan);
  let time = receivedAt;
  let timeIso: string | undefined;
  // The record is built as text: this is the ingest hot path, and one JSON.stringify per value
  // avoids building and serializing an intermediate object per event.
  let body = "";
  const fields = plan.fields;
  for (let i = 0; i < fields.length; i++) {
    const col = fields[i]!;
    const checked = check(col, event[col.name]);
    if (checked instanceof Invalid) return reject(id, checked.reason);
    if (col.type === "timestamp" && checked !== null) {
      const ms = checked as number;
      // A value already in canonical UTC form is stored as sent: formatting it again is the
      // costliest step of the hot path and yields the same instant.
      const raw = event[col.name];
      const text = typeof raw === "string" && isCanonicalUtc(raw) ? raw : iso(ms);
      if (col.name === plan.timeField) [time, timeIso] = [ms, text];
      body += `${cache.keys[i]}"${text}"`;
    } else {
      body += cache.keys[i] + (checked === null ? "null" : JSON.stringify(checked));
    }
  }
  let extra: Record<string, unknown> | null = null;
  for (const k in event) {
    if (!cache.declared.has(k)) (extra ??= extraObject())[k] = event[k];
  }
  const data =
    `{"_event_id":${JSON.stringify(id)},"_received_at":"${receivedIso(receivedAt)}","_event_time":"${timeIso ?? iso(time)}"` +
    `${body},"_extra":${extra === null ? "null" : JSON.stringify(extra)}}`;
  return { ok: true, id, time, data };
}

function normalizeSegment(
  plan: StreamPlan,
  event: Record<string, unknown>,
  receivedAt: number,
  fallbackId: string | undefined,
): NormalizedEvent | RejectedEvent {
  const id = idOf(event.messageId);
  if (id === null)
    return reject(undefined, "messageId must be a string (1-256 characters, no line breaks)");
  const eventId = id ?? fallbackId ?? uuidv7(receivedAt);
  const type = event.type;
  if (typeof type !== "string" || !SEGMENT_TYPES.has(type)) {
    return reject(eventId, "type must be one of track, identify, page, screen, group, alias");
  }
  if (type === "track" && typeof event.event !== "string")
    return reject(eventId, "a track call needs `event` (a string)");
  if (typeof event.userId !== "string" && typeof event.anonymousId !== "string") {
    return reject(eventId, "a Segment call needs userId or anonymousId");
  }
  let time = receivedAt;
  if (event.timestamp !== undefined && event.timestamp !== null) {
    const t = toMillis(event.timestamp);
    if (t === undefined) return reject(eventId, "timestamp is not an ISO-8601 date");
    time = t;
  }
  const out: Record<string, unknown> = {
    _event_id: eventId,
    _received_at: iso(receivedAt),
    _event_time: iso(time),
  };
  for (const col of plan.fields) out[col.name] = null;
  let extra: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(event)) {
    // Own keys only: `constructor`, `toString` or `__proto__` are event data, not Segment columns.
    const col = Object.hasOwn(SEGMENT_KEYS, k) ? SEGMENT_KEYS[k] : undefined;
    if (col !== undefined) {
      if (col === "properties" || col === "traits" || col === "context") out[col] = v ?? null;
      else if (v !== undefined && v !== null && typeof v !== "string")
        return reject(eventId, `${k} must be a string`);
      else out[col] = v ?? null;
    } else if (!SEGMENT_ENVELOPE.has(k)) (extra ??= extraObject())[k] = v;
  }
  out._extra = extra;
  return { ok: true, id: eventId, time, data: JSON.stringify(out) };
}

/**
 * An empty object for `_extra` without a prototype: on a plain `{}`, assigning a `__proto__` key
 * sets the prototype instead of storing the field, which JSON.stringify would then drop.
 */
function extraObject(): Record<string, unknown> {
  return Object.create(null) as Record<string, unknown>;
}

/** The id as text; undefined when absent, null when of a wrong type. */
function idOf(v: unknown): string | undefined | null {
  if (v === undefined || v === null) return undefined;
  // Ids travel newline-joined inside the stream: no line breaks.
  if (typeof v === "string" && v.length > 0 && v.length <= 256 && !v.includes("\n")) return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  return null;
}

/** Why a field value is not valid. */
class Invalid {
  constructor(readonly reason: string) {}
}

function check(col: Column, v: unknown): unknown {
  if (v === undefined || v === null) {
    return col.required ? new Invalid(`${col.name} is required`) : null;
  }
  switch (col.type) {
    case "string":
      return typeof v === "string" ? v : new Invalid(`${col.name} must be a string`);
    case "integer":
      return typeof v === "number" && Number.isSafeInteger(v)
        ? v
        : new Invalid(`${col.name} must be an integer`);
    case "number":
      return typeof v === "number" && Number.isFinite(v)
        ? v
        : new Invalid(`${col.name} must be a number`);
    case "boolean":
      return typeof v === "boolean" ? v : new Invalid(`${col.name} must be true or false`);
    case "timestamp": {
      const ms = toMillis(v);
      return ms === undefined
        ? new Invalid(`${col.name} must be an ISO-8601 timestamp or epoch milliseconds`)
        : ms;
    }
    case "json":
      return v;
  }
}

/** Epoch ms of an ISO-8601 string or epoch-ms number, or undefined. */
export function toMillis(v: unknown): number | undefined {
  let ms: number;
  if (typeof v === "number") ms = v;
  else if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v))
    ms = Date.parse(v.length === 19 || v.length === 16 ? `${v}Z` : v);
  else return undefined;
  return Number.isFinite(ms) && ms >= MIN_TIME && ms <= MAX_TIME ? Math.trunc(ms) : undefined;
}

let lastReceivedMs = NaN;
let lastReceivedIso = "";

/** ISO text of a received time: its own memo, as it alternates with event times in a batch. */
function receivedIso(ms: number): string {
  if (ms !== lastReceivedMs) [lastReceivedMs, lastReceivedIso] = [ms, new Date(ms).toISOString()];
  return lastReceivedIso;
}

let lastMs = NaN;
let lastIso = "";

/** ISO-8601 text of epoch ms; memoized because a batch shares its received time and often event times. */
function iso(ms: number): string {
  if (ms !== lastMs) [lastMs, lastIso] = [ms, new Date(ms).toISOString()];
  return lastIso;
}

function reject(id: string | undefined, reason: string): RejectedEvent {
  return { ok: false, id: id ?? uuidv7(), reason };
}
