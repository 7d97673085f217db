// Calendar days of the batch layer: parsing, ranges, and the UTC instants of a day in the pipeline's time zone.
import { TributaryError } from "../errors.js";

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

/** True when `s` is a real calendar day written `YYYY-MM-DD`. */
export function isDay(s: string): boolean {
  const m = DAY.exec(s);
  if (!m) return false;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Date(t).toISOString().slice(0, 10) === s;
}

/** `s` if it is a day, else TRB_BATCH_BAD_DATE naming what was given. */
export function parseDay(s: string, what = "date"): string {
  if (!isDay(s))
    throw new TributaryError("TRB_BATCH_BAD_DATE", `${what} \`${s}\` is not a day (YYYY-MM-DD).`);
  return s;
}

/** The day `n` days after `day` (negative: before). */
export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Every day from `from` to `to`, both included; TRB_BATCH_BAD_DATE when `from` is after `to`. */
export function dayRange(from: string, to: string): string[] {
  parseDay(from, "from");
  parseDay(to, "to");
  if (from > to) throw new TributaryError("TRB_BATCH_BAD_DATE", `from ${from} is after to ${to}.`);
  const out: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timezone, f);
  }
  return f;
}

/** The wall-clock time in `timezone` at instant `ms`, read as if it were UTC (epoch ms). */
function wallClock(ms: number, timezone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timezone).formatToParts(ms)) {
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  }
  return Date.UTC(
    parts.year!,
    parts.month! - 1,
    parts.day!,
    parts.hour!,
    parts.minute!,
    parts.second!,
  );
}

/** The day (`YYYY-MM-DD`) of instant `ms` in `timezone`. */
export function dayOf(ms: number, timezone: string): string {
  if (timezone === "UTC") return new Date(ms).toISOString().slice(0, 10);
  return new Date(wallClock(ms, timezone)).toISOString().slice(0, 10);
}

/** The instant (epoch ms) at which `day` begins in `timezone`. */
export function dayStartMs(day: string, timezone: string): number {
  const midnight = Date.parse(`${day}T00:00:00Z`);
  if (timezone === "UTC") return midnight;
  // The zone's offset at the guess, then again at the corrected instant (DST changes the offset).
  let start = midnight - (wallClock(midnight, timezone) - midnight);
  start = midnight - (wallClock(start, timezone) - start);
  return start;
}

/** The instants [start, end) covered by the days from `first` to `last` in `timezone`. */
export function daysSpanMs(first: string, last: string, timezone: string): [number, number] {
  return [dayStartMs(first, timezone), dayStartMs(addDays(last, 1), timezone)];
}
