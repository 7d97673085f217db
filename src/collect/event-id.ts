// Generates time-ordered event ids (UUIDv7, RFC 9562) for events that bring no id of their own.
import { randomFillSync } from "node:crypto";

const pool = Buffer.alloc(16 * 1024);
let offset = pool.length;
/** The caller's time of the last id, and the time encoded in it (ahead after a counter overflow). */
let lastNow = 0;
let lastMs = 0;
let counter = 0;

/** A UUIDv7: 48-bit Unix milliseconds, then random bits, so ids sort by creation time. */
export function uuidv7(now = Date.now()): string {
  if (offset + 10 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  // A 12-bit counter in rand_a keeps ids generated in the same millisecond in order (RFC 9562 §6.2);
  // when it overflows (a 10 000-event request shares one time), the encoded time moves on by 1 ms.
  if (now === lastNow || (now > lastNow && now <= lastMs)) {
    counter++;
    if (counter > 0xfff) [counter, lastMs] = [0, lastMs + 1];
  } else {
    counter = pool[offset]! & 0x7f;
    lastMs = now;
  }
  lastNow = now;
  const hex = lastMs.toString(16).padStart(12, "0");
  const randA = (0x7000 | counter).toString(16);
  const b = pool.subarray(offset, offset + 8);
  offset += 10;
  b[0] = (b[0]! & 0x3f) | 0x80;
  const randB = b.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${randA}-${randB.slice(0, 4)}-${randB.slice(4, 16)}`;
}
