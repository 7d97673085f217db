// The project of the view cases (stream_to_speed, view_query): the flights stream and the demo's `departures` view.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { type BenchProject, FLIGHTS_STREAM, STREAM, WRITE_KEY } from "../../flights.js";

/** A key that reads every dataset and view. */
export const READ_KEY = { id: "bench-reader", secret: "bench-read-key-0001" } as const;
/** A key for POST /v1/flush and POST /v1/batch/runs. */
export const ADMIN_KEY = { id: "bench-admin", secret: "bench-admin-key-0001" } as const;

/** The view both cases measure. */
export const VIEW = "departures";

/** The demo's `departures` view (examples/flights/tributary.yaml): per minute and origin. */
export const DEPARTURES = {
  description: "Departures per minute and origin airport",
  stream: STREAM,
  grain: "minute",
  dimensions: ["origin"],
  measures: {
    flights: "count",
    avg_delay: "avg(delay)",
    p95_delay: "p95(delay)",
    destinations: "count_distinct(destination)",
  },
  allowed_lateness: "10m",
};

/** A temp project with the flights stream (as bench/flights.ts declares it), the view and three keys. */
export function createViewProject(): BenchProject {
  const dir = mkdtempSync(join(tmpdir(), "trb-bench-view-"));
  const config = {
    name: "bench-views",
    streams: { [STREAM]: FLIGHTS_STREAM },
    keys: [
      { id: WRITE_KEY.id, secret: WRITE_KEY.secret, scopes: [`write:${STREAM}`] },
      { id: READ_KEY.id, secret: READ_KEY.secret, scopes: ["read:*"] },
      { id: ADMIN_KEY.id, secret: ADMIN_KEY.secret, scopes: ["admin"] },
    ],
    views: { [VIEW]: DEPARTURES },
  };
  writeFileSync(join(dir, "tributary.yaml"), stringify(config));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
