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

/** Largest and smallest event times accepted (years 1000..9999), so Parquet timestamps stay valid. */
const MIN_TIME = Date.UTC(1000, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * Validates and normalizes one event against its stream.
 * @example normalize(plan, { flight_id: "F1", date: "2001-01-01T00:01:00Z" }, Date.now())
 */
export function normalize(plan: StreamPlan, value: unknown, receivedAt: number): NormalizedEvent | RejectedEvent {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return reject(undefined, "event is not a JSON object");
  }
  const event = value as Record<string, unknown>;
  return plan.format === "segment" ? normalizeSegment(plan, event, receivedAt) : normalizeJson(plan, event, receivedAt);
}

function normalizeJson(plan: StreamPlan, event: Record<string, unknown>, receivedAt: number): NormalizedEvent | RejectedEvent {
  const idValue = plan.idField === undefined ? undefined : event[plan.idField];
  const id = idOf(idValue);
  if (id === null) return reject(undefined, `${plan.idField} must be a string or an integer`);
  const out: Record<string, unknown> = { _event_id: id ?? uuidv7(receivedAt), _received_at: iso(receivedAt) };
  let time = receivedAt;
  const row: Record<string, unknown> = {};
  for (const col of plan.fields) {
    const v = event[col.name];
    const checked = check(col, v);
    if (checked instanceof Invalid) return reject(out._event_id as string, checked.reason);
    row[col.name] = checked;
    if (col.name === plan.timeField && v !== undefined && v !== null) time = toMillis(v)!;
  }
  out._event_time = iso(time);
  Object.assign(out, row);
  let extra: Record<string, unknown> | null = null;
  for (const k of Object.keys(event)) {
    if (!(k in row)) (extra ??= {})[k] = event[k];
  }
  out._extra = extra;
  return { ok: true, id: out._event_id as string, time, data: JSON.stringify(out) };
}

function normalizeSegment(plan: StreamPlan, event: Record<string, unknown>, receivedAt: number): NormalizedEvent | RejectedEvent {
  const id = idOf(event.messageId);
  if (id === null) return reject(undefined, "messageId must be a string");
  const eventId = id ?? uuidv7(receivedAt);
  const type = event.type;
  if (typeof type !== "string" || !SEGMENT_TYPES.has(type)) {
    return reject(eventId, "type must be one of track, identify, page, screen, group, alias");
  }
  if (type === "track" && typeof event.event !== "string") return reject(eventId, "a track call needs `event` (a string)");
  if (typeof event.userId !== "string" && typeof event.anonymousId !== "string") {
    return reject(eventId, "a Segment call needs userId or anonymousId");
  }
  let time = receivedAt;
  if (event.timestamp !== undefined && event.timestamp !== null) {
    const t = toMillis(event.timestamp);
    if (t === undefined) return reject(eventId, "timestamp is not an ISO-8601 date");
    time = t;
  }
  const out: Record<string, unknown> = { _event_id: eventId, _received_at: iso(receivedAt), _event_time: iso(time) };
  for (const col of plan.fields) out[col.name] = null;
  let extra: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(event)) {
    const col = SEGMENT_KEYS[k];
    if (col !== undefined) {
      if (col === "properties" || col === "traits" || col === "context") out[col] = v ?? null;
      else if (v !== undefined && v !== null && typeof v !== "string") return reject(eventId, `${k} must be a string`);
      else out[col] = v ?? null;
    } else if (!SEGMENT_ENVELOPE.has(k)) (extra ??= {})[k] = v;
  }
  out._extra = extra;
  return { ok: true, id: eventId, time, data: JSON.stringify(out) };
}

/** The id as text; undefined when absent, null when of a wrong type. */
function idOf(v: unknown): string | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string" && v.length > 0 && v.length <= 256) return v;
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
      return typeof v === "number" && Number.isSafeInteger(v) ? v : new Invalid(`${col.name} must be an integer`);
    case "number":
      return typeof v === "number" && Number.isFinite(v) ? v : new Invalid(`${col.name} must be a number`);
    case "boolean":
      return typeof v === "boolean" ? v : new Invalid(`${col.name} must be true or false`);
    case "timestamp": {
      const ms = toMillis(v);
      return ms === undefined ? new Invalid(`${col.name} must be an ISO-8601 timestamp or epoch milliseconds`) : iso(ms);
    }
    case "json":
      return v;
  }
}

/** Epoch ms of an ISO-8601 string or epoch-ms number, or undefined. */
export function toMillis(v: unknown): number | undefined {
  let ms: number;
  if (typeof v === "number") ms = v;
  else if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v)) ms = Date.parse(v.length === 19 || v.length === 16 ? `${v}Z` : v);
  else return undefined;
  return Number.isFinite(ms) && ms >= MIN_TIME && ms <= MAX_TIME ? Math.trunc(ms) : undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function reject(id: string | undefined, reason: string): RejectedEvent {
  return { ok: false, id: id ?? uuidv7(), reason };
}
