// Request bodies of the http_to_stream case: JSON arrays of flights-like events, every event id unique.
import { randomBytes } from "node:crypto";
import { flightEvent } from "../../flights.js";

/** The two request shapes measured: 100 events per request, or one. */
export type Mode = "batched" | "single";

/** Events per request of each mode. */
export const EVENTS_PER_REQUEST: Record<Mode, number> = { batched: 100, single: 1 };

const ID_LENGTH = 20;
const PLACEHOLDER = "#".repeat(ID_LENGTH);
const BASE_TIME = Date.UTC(2001, 0, 15, 8, 0, 0);

/**
 * Makes request bodies for one load-generator process. Ids are `<7-char process prefix><9-digit
 * counter>-<3-digit index>`, fixed width, so every body of a mode has the same length and building
 * one is a copy plus small writes (the load generator shares the machine with the server).
 */
export function bodyFactory(mode: Mode): {
  readonly length: number;
  readonly events: number;
  next(): Buffer;
} {
  const events = EVENTS_PER_REQUEST[mode];
  const values = Array.from({ length: events }, (_, i) =>
    flightEvent(i, PLACEHOLDER, BASE_TIME + i * 60_000),
  );
  const template = Buffer.from(JSON.stringify(values), "latin1");
  const offsets: number[] = [];
  for (
    let at = template.indexOf(PLACEHOLDER);
    at >= 0;
    at = template.indexOf(PLACEHOLDER, at + ID_LENGTH)
  ) {
    offsets.push(at);
  }
  if (offsets.length !== events) throw new Error("id placeholder count mismatch");
  // Lower-case letters only, so ids from different processes never collide with each other's digits.
  const prefix = [...randomBytes(7)].map((b) => String.fromCharCode(97 + (b % 26))).join("");
  let counter = 0;
  return {
    length: template.length,
    events,
    next: () => {
      const body = Buffer.allocUnsafe(template.length);
      template.copy(body);
      const stem = prefix + String(counter++).padStart(9, "0") + "-";
      for (let i = 0; i < offsets.length; i++) {
        body.write(stem + String(i).padStart(3, "0"), offsets[i]!, "latin1");
      }
      return body;
    },
  };
}
