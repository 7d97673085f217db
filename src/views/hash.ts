// The one value hash of count_distinct, in JavaScript and in DuckDB SQL: the lower 64 bits of MD5.
import { createHash } from "node:crypto";

/**
 * Field types count_distinct hashes (the config's `string`, `integer` and `boolean`). Each has one
 * canonical text, the same in both layers: a string as is (UTF-8), an integer in decimal, a
 * boolean `true` / `false`.
 */
export type HashType = "string" | "integer" | "boolean";

/** A value count_distinct can hash. */
export type HashableValue = string | number | bigint | boolean;

/**
 * The hash of a value: the lower 64 bits of the MD5 of its canonical text, read little-endian from
 * digest bytes 8..15, which is what DuckDB's `md5_number_lower(text)` returns (see `hashSql`).
 * Numbers must be safe integers (collect accepts no other `integer`); pass larger ones as bigint.
 * Throws a TypeError for other types and a RangeError for non-integer or unsafe numbers:
 * count_distinct is defined for strings, integers and booleans only.
 * @example hashValue("SFO") // 15447003248321515632n, as `SELECT md5_number_lower('SFO')`
 */
export function hashValue(v: HashableValue): bigint {
  hashValueParts(v, PARTS);
  return (BigInt(PARTS[1]!) << 32n) | BigInt(PARTS[0]!);
}

const PARTS = new Uint32Array(2);

/**
 * `hashValue` without a bigint: writes the low 32 bits of the hash to `out[0]` and the high 32 bits
 * to `out[1]`. The sketches' hot path, ~4x cheaper than `hashValue` (measured in hash.test.ts).
 */
export function hashValueParts(v: HashableValue, out: Uint32Array): void {
  const text = canonicalText(v);
  // Dimension-like values repeat (airports, event names): remember recent hashes, so MD5 runs
  // once per distinct text instead of once per event. Bounded: cleared when full.
  const cached = RECENT.get(text);
  if (cached !== undefined) {
    out[0] = cached[0]!;
    out[1] = cached[1]!;
    return;
  }
  md5Lower(text, out);
  if (text.length <= 64) {
    if (RECENT.size >= RECENT_MAX) RECENT.clear();
    RECENT.set(text, Uint32Array.of(out[0]!, out[1]!));
  }
}

/** Recently hashed short texts and their hash halves. */
const RECENT = new Map<string, Uint32Array>();
const RECENT_MAX = 16_384;

/** The canonical text of a value: what both layers hash. */
export function canonicalText(v: HashableValue): string {
  switch (typeof v) {
    case "string":
      return v;
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return v.toString();
    case "number":
      if (!Number.isInteger(v))
        throw new RangeError(
          `count_distinct hashes strings, integers and booleans; ${v} is not an integer`,
        );
      if (!Number.isSafeInteger(v))
        throw new RangeError(
          `count_distinct: ${v} is beyond 2^53 and not exact as a number; pass it as a bigint or a string`,
        );
      // String(-0) is "0", as DuckDB prints an integer zero.
      return String(v);
    default:
      throw new TypeError(
        `count_distinct hashes strings, integers and booleans; got ${v === null ? "null" : typeof v}`,
      );
  }
}

/**
 * The DuckDB expression (UBIGINT) equal to `hashValue` of a column's values: NULL for NULL.
 * `columnSql` is inserted as is (quote identifiers yourself). The column's SQL type must match
 * `type`: VARCHAR for `string` (another type would hash DuckDB's text of it, which JavaScript
 * does not see), an integer type for `integer` (a DOUBLE holding whole numbers works, but DuckDB
 * rounds a fractional one where `hashValue` throws), BOOLEAN for `boolean`.
 * @example hashSql('"destination"', "string") // md5_number_lower(CAST("destination" AS VARCHAR))
 */
export function hashSql(columnSql: string, type: HashType): string {
  switch (type) {
    case "string":
    case "boolean":
      // DuckDB casts BOOLEAN to 'true' / 'false', the canonical text.
      return `md5_number_lower(CAST(${columnSql} AS VARCHAR))`;
    case "integer":
      // Through HUGEINT so that any integer type (and a DOUBLE holding 3.0) prints as plain decimal.
      return `md5_number_lower(CAST(CAST(${columnSql} AS HUGEINT) AS VARCHAR))`;
    default:
      throw new TypeError(`hashSql: no hash for type ${String(type)}`);
  }
}

// MD5 (RFC 1321) in JavaScript for short texts: node:crypto's createHash costs ~1.4 µs a value
// here (object, digest Buffer, BigInt read), this ~0.18 µs. Long texts go to node:crypto.
// hash.test.ts checks both paths against node:crypto and DuckDB.

/** Texts longer than this (UTF-16 units) are hashed by node:crypto. */
const JS_MD5_MAX_CHARS = 1024;

const SHIFT = Int32Array.from([
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
  20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6,
  10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
]);
/** RFC 1321's table: floor(|sin(i + 1)| · 2^32), written out rather than trusting Math.sin. */
const K = Int32Array.from([
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
]);
const encoder = new TextEncoder();
/** The padded message: room for JS_MD5_MAX_CHARS units of 3 UTF-8 bytes, padding and length. */
const bytes = new Uint8Array(3 * JS_MD5_MAX_CHARS + 72);
/** On a little-endian host, the message's 32-bit words are a view of its bytes. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const words32 = new Int32Array(bytes.buffer);
/** One block's words, assembled byte by byte on a big-endian host. */
const WORDS = new Int32Array(16);

/** Writes the lower 64 bits of MD5(UTF-8 of `text`) to `out` as [low 32, high 32]. */
function md5Lower(text: string, out: Uint32Array): void {
  if (text.length > JS_MD5_MAX_CHARS) {
    const d = createHash("md5").update(text, "utf8").digest();
    out[0] = d.readUInt32LE(8);
    out[1] = d.readUInt32LE(12);
    return;
  }
  let len = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) {
      // Lone surrogates become U+FFFD, as Buffer and DuckDB's string conversion do.
      len = encoder.encodeInto(text, bytes).written;
      break;
    }
    bytes[i] = c;
  }
  // Padding: 0x80, zeros, then the bit length (little-endian 64-bit) closing a 64-byte block.
  const total = (((len + 8) >>> 6) + 1) << 6;
  bytes.fill(0, len, total);
  bytes[len] = 0x80;
  const bits = len * 8;
  bytes[total - 8] = bits & 0xff;
  bytes[total - 7] = (bits >>> 8) & 0xff;
  bytes[total - 6] = (bits >>> 16) & 0xff;
  bytes[total - 5] = (bits >>> 24) & 0xff;
  let a0 = 0x67452301 | 0;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476 | 0;
  const w = LITTLE_ENDIAN ? words32 : WORDS;
  for (let off = 0; off < total; off += 64) {
    let base = off >> 2;
    if (!LITTLE_ENDIAN) {
      for (let j = 0; j < 16; j++) {
        const p = off + 4 * j;
        WORDS[j] = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
      }
      base = 0;
    }
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    let f: number;
    let i = 0;
    for (; i < 16; i++) {
      f = (((b & c) | (~b & d)) + a + K[i]! + w[base + i]!) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((f << SHIFT[i]!) | (f >>> (32 - SHIFT[i]!)))) | 0;
    }
    for (; i < 32; i++) {
      f = (((d & b) | (~d & c)) + a + K[i]! + w[base + ((5 * i + 1) & 15)]!) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((f << SHIFT[i]!) | (f >>> (32 - SHIFT[i]!)))) | 0;
    }
    for (; i < 48; i++) {
      f = ((b ^ c ^ d) + a + K[i]! + w[base + ((3 * i + 5) & 15)]!) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((f << SHIFT[i]!) | (f >>> (32 - SHIFT[i]!)))) | 0;
    }
    for (; i < 64; i++) {
      f = ((c ^ (b | ~d)) + a + K[i]! + w[base + ((7 * i) & 15)]!) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((f << SHIFT[i]!) | (f >>> (32 - SHIFT[i]!)))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  // The digest is a0 b0 c0 d0, each little-endian: bytes 8..15 are c0 then d0.
  out[0] = c0;
  out[1] = d0;
}
