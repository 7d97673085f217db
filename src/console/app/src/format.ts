// Formatting for the console: numbers, bytes, times (event times are shown in UTC), durations and CSV.
import type { Cell, Column } from "./types.js";

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

/** A number from a JSON value: big integers and decimals arrive as strings. */
export function toNumber(value: Cell | undefined): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  }
  if (typeof value === "boolean") return value ? 1 : 0;
  return null;
}

/** `12,873`, `7.5`; `—` for nothing. */
export function fmtNumber(value: Cell | undefined): string {
  const n = toNumber(value);
  if (n === null) return "—";
  return Number.isInteger(n) ? integer.format(n) : decimal.format(n);
}

/** A whole number with thousands separators (a big integer string keeps every digit). */
export function fmtInt(value: Cell | undefined): string {
  if (typeof value === "string" && /^-?\d{16,}$/.test(value)) {
    return value.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  const n = toNumber(value);
  return n === null ? "—" : integer.format(Math.round(n));
}

/** `2.3 MiB`. */
export function fmtBytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let n = value;
  let unit = 0;
  while (Math.abs(n) >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : 1)} ${units[unit]}`;
}

const TIME_RE =
  /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Epoch milliseconds of a time value: an ISO instant, DuckDB's UTC `2001-01-01 06:00:00` (no zone:
 * UTC), a date, or epoch milliseconds. Null when it is not a time.
 */
export function toMs(value: Cell | undefined): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value !== "string") return null;
  const m = TIME_RE.exec(value.trim());
  if (m === null) return null;
  const [, date, time, zone] = m;
  let z = zone ?? "Z";
  if (/^[+-]\d{2}$/.test(z)) z += ":00";
  else if (/^[+-]\d{4}$/.test(z)) z = `${z.slice(0, 3)}:${z.slice(3)}`;
  const ms = Date.parse(`${date}T${time ?? "00:00:00"}${z.toUpperCase()}`);
  return Number.isFinite(ms) ? ms : null;
}

/** True when a string looks like a date or instant. */
export function looksLikeTime(value: Cell | undefined): boolean {
  return typeof value === "string" && TIME_RE.test(value.trim());
}

/** True for DuckDB's date and timestamp types. */
export function isTimeType(type: string | undefined): boolean {
  return /^(DATE|TIMESTAMP|TIMESTAMPTZ|TIMESTAMP[ _]|TIME WITH|DATETIME)/i.test(type ?? "");
}

/** True for DuckDB's numeric types. */
export function isNumericType(type: string | undefined): boolean {
  return /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)/i.test(
    type ?? "",
  );
}

/** True for DuckDB's integer types (a count or a sum of integers: summable across dimensions). */
export function isIntegerType(type: string | undefined): boolean {
  return /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)/i.test(
    type ?? "",
  );
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** `2001-01-01 06:00:00` in UTC, `—` for nothing; non-times are shown as they are. */
export function fmtTime(value: Cell | undefined): string {
  if (value === null || value === undefined || value === "") return "—";
  const ms = toMs(value);
  if (ms === null) return String(value);
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(
    d.getUTCHours(),
  )}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** `HH:MM:SS` of the local wall clock. */
export function fmtClock(date: Date): string {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** `YYYY-MM-DD` of an instant, in UTC. */
export function fmtDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`, `3 d 4 h`. */
export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The time between two instants, or `—`. */
export function fmtSpan(from: string | null | undefined, to: string | null | undefined): string {
  const a = toMs(from ?? null);
  const b = toMs(to ?? null);
  return a === null || b === null ? "—" : fmtDuration(b - a);
}

/** Any cell as text: JSON for lists and objects, `NULL` for null. */
export function fmtCell(value: Cell | undefined): string {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** One CSV field, quoted when it holds a comma, quote, or line break (RFC 4180). */
function csvField(value: Cell | undefined): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) || /^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A result as CSV: a header line, then one line per row, CRLF-separated. */
export function toCsv(columns: Column[], rows: Cell[][]): string {
  const lines = [columns.map((c) => csvField(c.name)).join(",")];
  for (const row of rows) lines.push(columns.map((_, i) => csvField(row[i])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

/** `2 h`, `6 h`, `7 d`, `90 min` for a range length. */
export function fmtRange(ms: number): string {
  const minutes = ms / 60_000;
  if (minutes < 60 || minutes % 60 !== 0) return `${Math.round(minutes)} min`;
  const hours = minutes / 60;
  if (hours < 48 || hours % 24 !== 0) return `${hours} h`;
  return `${hours / 24} d`;
}
