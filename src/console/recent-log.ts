// Keeps the process's latest warnings and errors in memory, for the console's overview.
import { Writable } from "node:stream";

/** A logged warning or error as the console shows it. */
export interface RecentEntry {
  readonly time: string;
  readonly level: "warn" | "error";
  readonly msg: string;
  /** The Tributary error code, when the entry carries one. */
  readonly code: string | null;
}

/** pino's numeric levels. */
const WARN = 40;
const ERROR = 50;

/**
 * A pino destination (use it in `pino.multistream` at level `warn`) keeping the last `size`
 * warnings and errors. It parses only the lines it is given, so info logs cost nothing here.
 *
 * @example
 * const recent = new RecentLog();
 * const log = pino(pino.multistream([{ stream: process.stdout }, { level: "warn", stream: recent.stream }]));
 */
export class RecentLog {
  readonly #size: number;
  readonly #entries: RecentEntry[] = [];
  /** The writable side pino writes JSON lines to. */
  readonly stream: Writable;

  constructor(size = 50) {
    this.#size = size;
    this.stream = new Writable({
      write: (chunk: Buffer | string, _enc, done) => {
        for (const line of String(chunk).split("\n")) if (line.trim() !== "") this.#add(line);
        done();
      },
    });
  }

  /** Newest first. */
  entries(): RecentEntry[] {
    return [...this.#entries].reverse();
  }

  #add(line: string): void {
    let o: {
      level?: number;
      time?: number;
      msg?: string;
      err?: { code?: string; message?: string };
      code?: string;
    };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      return; // Not a pino line: nothing to show.
    }
    if (o.level === undefined || o.level < WARN) return;
    const detail = o.err?.message ? `: ${o.err.message}` : "";
    this.#entries.push({
      time: new Date(o.time ?? Date.now()).toISOString(),
      level: o.level >= ERROR ? "error" : "warn",
      msg: `${o.msg ?? ""}${detail}`.slice(0, 2000),
      code: o.err?.code ?? o.code ?? null,
    });
    if (this.#entries.length > this.#size) this.#entries.shift();
  }
}
