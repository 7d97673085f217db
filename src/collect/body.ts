// Splits request bodies into events: a JSON array, one JSON object, or NDJSON (one event per line).
import { TributaryError } from "../errors.js";
import type { IngestItem } from "./collector.js";

/**
 * Parses a native body. JSON (array or object) must parse as a whole, else 400 and nothing is
 * stored; NDJSON is parsed line by line and a line that does not parse is dead-lettered with its bytes.
 */
export function parseEvents(
  body: string,
  contentType: string | undefined,
  maxEventSize: number,
): IngestItem[] {
  const ndjson = contentType !== undefined && /ndjson|jsonlines|x-jsonl/i.test(contentType);
  if (ndjson) return parseNdjson(body);
  const text = body.trimStart();
  if (text.startsWith("[") || text.startsWith("{")) {
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (e) {
      // One object per line sent as application/json: accept it as NDJSON.
      if (text.startsWith("{") && body.includes("\n")) return parseNdjson(body);
      throw new TributaryError(
        "TRB_COLLECT_BODY_MALFORMED",
        `The body is not valid JSON: ${(e as Error).message}`,
      );
    }
    const values = Array.isArray(value) ? value : [value];
    // When the whole body fits the per-event limit, every event does: skip measuring each one.
    const measure = body.length > maxEventSize;
    return values.map((v) => ({ value: v, size: measure ? JSON.stringify(v).length : 0 }));
  }
  if (text.length === 0)
    throw new TributaryError("TRB_COLLECT_BODY_MALFORMED", "The body is empty; send events.");
  throw new TributaryError("TRB_COLLECT_BODY_MALFORMED");
}

function parseNdjson(body: string): IngestItem[] {
  const items: IngestItem[] = [];
  for (const line of body.split("\n")) {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (text.trim().length === 0) continue;
    try {
      items.push({ value: JSON.parse(text), size: text.length });
    } catch (e) {
      items.push({ raw: text, reason: `malformed JSON: ${(e as Error).message}` });
    }
  }
  if (items.length === 0)
    throw new TributaryError("TRB_COLLECT_BODY_MALFORMED", "The body holds no events.");
  return items;
}
