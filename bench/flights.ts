// Flights-like events (~200 B) and the temp project the benchmark cases run Tributary on.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";

/** The write key every benchmark project declares. */
export const WRITE_KEY = { id: "bench-writer", secret: "bench-write-key-0001" } as const;

/** The stream the cases send to: the demo's `flights` declaration (examples/flights/tributary.yaml). */
export const STREAM = "flights";

/** The demo's `flights` stream declaration (id, time, six typed fields), for benchmark projects. */
export const FLIGHTS_STREAM = {
  description: "Flights-like benchmark events",
  id_field: "flight_id",
  time_field: "date",
  partition_key: "origin",
  fields: {
    flight_id: { type: "string", required: true },
    date: { type: "timestamp", required: true },
    delay: "integer",
    distance: "integer",
    origin: { type: "string", required: true },
    destination: { type: "string", required: true },
  },
};

const AIRPORTS = [
  "ATL",
  "ORD",
  "DFW",
  "LAX",
  "DEN",
  "SFO",
  "PHX",
  "IAH",
  "LAS",
  "DTW",
  "MSP",
  "EWR",
  "SEA",
  "BOS",
];
const CARRIERS = ["AA", "UA", "DL", "WN", "US", "NW", "CO", "AS"];

/**
 * The `i`-th flights-like event: the six declared fields plus five undeclared ones (kept in
 * `_extra`), about 200 bytes of JSON with a 20-character id.
 */
export function flightEvent(i: number, id: string, timeMs: number): Record<string, unknown> {
  const carrier = CARRIERS[i % CARRIERS.length]!;
  return {
    flight_id: id,
    date: new Date(timeMs).toISOString().slice(0, 19) + "Z",
    delay: ((i * 37) % 90) - 15,
    distance: 150 + ((i * 7919) % 2500),
    origin: AIRPORTS[i % AIRPORTS.length]!,
    destination: AIRPORTS[(i * 5 + 3) % AIRPORTS.length]!,
    carrier,
    tail_number: `N${(100 + (i % 900)).toString()}${carrier}`,
    dep_gate: `${"ABCDEF"[i % 6]!}${(i % 40) + 1}`,
    seats: 120 + (i % 5) * 30,
    status: i % 17 === 0 ? "delayed" : "scheduled",
  };
}

/** A temp folder holding a tributary.yaml with the flights stream and the bench write key. */
export interface BenchProject {
  readonly dir: string;
  cleanup(): void;
}

/** Options of a benchmark project. */
export interface ProjectOptions {
  /** `server.max_inflight`, e.g. "256KiB" (default: the config default). */
  readonly maxInflight?: string;
  /** `lake.flush.max_bytes`, e.g. "64MiB" (default: the config default). */
  readonly flushMaxBytes?: string;
  /** `lake.flush.max_age`, e.g. "1h" (default: the config default). */
  readonly flushMaxAge?: string;
  /** `backends:` as written in tributary.yaml (default: embedded). */
  readonly backends?: Record<string, unknown>;
}

/** Creates a temp project for a benchmark run. */
export function createBenchProject(options: ProjectOptions = {}): BenchProject {
  const dir = mkdtempSync(join(tmpdir(), "trb-bench-"));
  const config: Record<string, unknown> = {
    name: "bench",
    streams: { [STREAM]: FLIGHTS_STREAM },
    keys: [{ id: WRITE_KEY.id, secret: WRITE_KEY.secret, scopes: [`write:${STREAM}`] }],
  };
  if (options.maxInflight !== undefined) config.server = { max_inflight: options.maxInflight };
  if (options.flushMaxBytes !== undefined || options.flushMaxAge !== undefined) {
    config.lake = {
      flush: {
        ...(options.flushMaxBytes !== undefined ? { max_bytes: options.flushMaxBytes } : {}),
        ...(options.flushMaxAge !== undefined ? { max_age: options.flushMaxAge } : {}),
      },
    };
  }
  if (options.backends !== undefined) config.backends = options.backends;
  writeFileSync(join(dir, "tributary.yaml"), stringify(config));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
