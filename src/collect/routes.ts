// HTTP endpoints of collect: native events and Segment-compatible calls, all through the Collector.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { KeyPlan } from "../config/index.js";
import { TributaryError } from "../errors.js";
import { basicUser, bearerSecret, type KeyRing } from "../govern/index.js";
import { parseEvents } from "./body.js";
import type { Collector, IngestItem, ItemResult } from "./collector.js";

/** Segment's documented limits: 32 KB per call, 500 KB per batch. */
const SEGMENT_CALL_LIMIT = 32 * 1024;
const SEGMENT_BATCH_LIMIT = 500 * 1024;

/** What the collect routes need. */
export interface CollectDeps {
  readonly collector: Collector;
  readonly keys: KeyRing;
  readonly bodyLimit: number;
  readonly maxEventsPerRequest: number;
  readonly maxEventSize: number;
}

/** Registers `POST /v1/streams/:stream/events` and the Segment-compatible routes. */
export function registerCollectRoutes(app: FastifyInstance, deps: CollectDeps): void {
  const { collector, keys } = deps;

  app.post<{ Params: { stream: string } }>(
    "/v1/streams/:stream/events",
    { bodyLimit: deps.bodyLimit },
    async (req, reply) => {
      const secret = bearerSecret(req.headers.authorization);
      if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
      const key = keys.bySecret(secret);
      const stream = req.params.stream;
      collector.plan(stream);
      keys.authorize(key, { kind: "write", stream });
      const text = bodyText(req);
      collector.admit(text.length);
      const items = parseEvents(text, req.headers["content-type"], deps.maxEventSize);
      checkCount(items, deps.maxEventsPerRequest);
      const results = await collector.ingest(stream, items, "native");
      return reply.code(200).send(summarize(results));
    },
  );

  const segment = (path: string, kind: "batch" | "single"): void => {
    app.post(
      path,
      { bodyLimit: kind === "batch" ? SEGMENT_BATCH_LIMIT : SEGMENT_CALL_LIMIT },
      async (req, reply) => {
        const key = segmentKey(keys, req.headers.authorization, req.body);
        const stream = key.segmentStream;
        if (stream === undefined)
          throw new TributaryError(
            "TRB_COLLECT_SEGMENT_UNBOUND",
            `key ${key.id} has no segment_stream`,
          );
        keys.authorize(key, { kind: "write", stream });
        const body = parseObject(bodyText(req));
        let items: IngestItem[];
        if (kind === "batch") {
          if (!Array.isArray(body.batch))
            throw new TributaryError(
              "TRB_COLLECT_BODY_MALFORMED",
              "A batch call needs `batch`: an array of calls.",
            );
          items = body.batch.map((v: unknown) => ({
            value: withDefaults(v, body.context),
            size: 0,
          }));
        } else {
          const type = path.slice("/v1/".length);
          items = [{ value: { type, ...body }, size: 0 }];
        }
        checkCount(items, deps.maxEventsPerRequest);
        const results = await collector.ingest(stream, items, "segment");
        const s = summarize(results);
        return reply.code(200).send({ success: true, ...s });
      },
    );
  };
  segment("/v1/batch", "batch");
  segment("/v1/import", "batch");
  for (const call of ["track", "identify", "page", "screen", "group", "alias"])
    segment(`/v1/${call}`, "single");
}

/** The raw body as text (the server registers a string parser for JSON content types). */
export function bodyText(req: FastifyRequest): string {
  const body = req.body;
  if (typeof body === "string") return body;
  if (Buffer.isBuffer(body)) return body.toString("utf8");
  if (body === undefined || body === null) return "";
  throw new TributaryError("TRB_HTTP_UNSUPPORTED_MEDIA_TYPE");
}

function parseObject(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TributaryError(
      "TRB_COLLECT_BODY_MALFORMED",
      `The body is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TributaryError("TRB_COLLECT_BODY_MALFORMED", "The body must be a JSON object.");
  }
  return v as Record<string, unknown>;
}

/** Segment sends the write key as the Basic-auth user; some libraries put `writeKey` in the body. */
function segmentKey(keys: KeyRing, authorization: string | undefined, body: unknown): KeyPlan {
  let user = basicUser(authorization);
  if (user === undefined && typeof body === "string") {
    const m = /"writeKey"\s*:\s*"([^"]+)"/.exec(body);
    if (m) user = m[1];
  }
  if (user === undefined || user.length === 0) throw new TributaryError("TRB_AUTH_MISSING");
  return keys.bySecret(user);
}

function withDefaults(v: unknown, context: unknown): unknown {
  if (context === undefined || v === null || typeof v !== "object" || Array.isArray(v)) return v;
  const call = v as Record<string, unknown>;
  return call.context === undefined ? { ...call, context } : call;
}

function checkCount(items: readonly unknown[], max: number): void {
  if (items.length > max) {
    throw new TributaryError(
      "TRB_COLLECT_TOO_MANY_EVENTS",
      `${items.length} events in one request; the limit is ${max}.`,
    );
  }
}

/** The native response: counts, and each dead-lettered event with its index and reason. */
export function summarize(results: readonly ItemResult[]): {
  accepted: number;
  duplicates: number;
  dead_lettered: number;
  dead_letters: { index: number; id: string; reason: string }[];
} {
  let accepted = 0;
  let duplicates = 0;
  const dead: { index: number; id: string; reason: string }[] = [];
  results.forEach((r, index) => {
    if (r.status === "stored") accepted++;
    else if (r.status === "duplicate") duplicates++;
    else dead.push({ index, id: r.id, reason: r.reason ?? "invalid" });
  });
  return { accepted, duplicates, dead_lettered: dead.length, dead_letters: dead };
}
