// `POST /v1/streams/{stream}/dead-letters/replay`: sends dead letters through the stream's current schema again.
import type { FastifyInstance } from "fastify";
import { TributaryError } from "../errors.js";
import { bearerSecret, type KeyRing } from "../govern/index.js";
import type { Collector, DeadLetter } from "./collector.js";

/** Most dead letters one call replays; the answer's `remaining` says how many more are waiting. */
export const REPLAY_BATCH = 5_000;
const BODY_LIMIT = 1024 * 1024;
/** Ids a request may name (the rest of a larger selection goes in later calls). */
const MAX_IDS = REPLAY_BATCH;

/** What the replay route needs. */
export interface DeadLetterDeps {
  readonly collector: Collector;
  readonly keys: KeyRing;
  /** Lands what the stream holds, so the lake shows every acknowledged dead letter. */
  readonly flush: () => Promise<void>;
  /**
   * Landed dead letters of a stream not yet in `raw.<stream>` (oldest first, at most `limit`),
   * limited to `ids` when given; and how many such letters there are in all.
   */
  readonly pending: (
    stream: string,
    ids: readonly string[] | undefined,
    limit: number,
  ) => Promise<{ letters: DeadLetter[]; total: number }>;
}

/**
 * Registers the replay route (admin keys). The body names dead letters by id (`{"ids": [...]}`) or
 * takes every pending one (`{"all": true}`). Landed first, so nothing acknowledged is missed; a
 * letter whose id is already in `raw.<stream>` was replayed before and is skipped.
 */
export function registerDeadLetterRoutes(app: FastifyInstance, deps: DeadLetterDeps): void {
  app.post<{ Params: { stream: string } }>(
    "/v1/streams/:stream/dead-letters/replay",
    { bodyLimit: BODY_LIMIT },
    async (req) => {
      const secret = bearerSecret(req.headers.authorization);
      if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
      deps.keys.authorize(deps.keys.bySecret(secret), { kind: "admin" });
      const stream = req.params.stream;
      deps.collector.plan(stream);
      const ids = replaySelection(req.body);
      await deps.flush();
      const { letters, total } = await deps.pending(stream, ids, REPLAY_BATCH);
      const results = await deps.collector.replay(stream, letters);
      const count = (status: string): number => results.filter((r) => r.status === status).length;
      return {
        considered: ids?.length ?? letters.length,
        stored: count("stored"),
        duplicate: count("duplicate"),
        already_landed: ids === undefined ? 0 : ids.length - letters.length,
        still_invalid: results
          .filter((r) => r.status === "invalid")
          .map((r) => ({ id: r.id, reason: r.reason })),
        remaining: Math.max(0, total - letters.length),
      };
    },
  );
}

/** The ids a replay body names, or undefined for `{"all": true}`. */
function replaySelection(raw: unknown): string[] | undefined {
  let body: unknown = raw;
  if (typeof raw === "string") {
    try {
      body = raw === "" ? {} : JSON.parse(raw);
    } catch (e) {
      throw new TributaryError(
        "TRB_HTTP_BAD_REQUEST",
        `The body is not valid JSON: ${(e as Error).message}`,
      );
    }
  }
  const b = (body ?? {}) as { ids?: unknown; all?: unknown };
  if (b.all === true && b.ids === undefined) return undefined;
  if (
    Array.isArray(b.ids) &&
    b.ids.length > 0 &&
    b.ids.length <= MAX_IDS &&
    b.ids.every((id) => typeof id === "string" && id.length > 0 && id.length <= 256)
  )
    return [...new Set(b.ids as string[])];
  throw new TributaryError(
    "TRB_HTTP_BAD_REQUEST",
    `Send \`{"ids": ["<_event_id>", ...]}\` (1 to ${MAX_IDS} ids) or \`{"all": true}\`.`,
  );
}
