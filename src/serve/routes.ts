// HTTP endpoints of serve: read-only SQL.
import type { FastifyInstance } from "fastify";
import { TributaryError } from "../errors.js";
import { bearerSecret, type KeyRing } from "../govern/index.js";
import type { QueryEngine } from "./query-engine.js";

/** Largest SQL request body. */
const QUERY_BODY_LIMIT = 256 * 1024;

/** Registers `POST /v1/query` `{ "sql": "..." }` → `{ columns, rows }`. */
export function registerServeRoutes(
  app: FastifyInstance,
  deps: { engine: QueryEngine; keys: KeyRing },
): void {
  app.post("/v1/query", { bodyLimit: QUERY_BODY_LIMIT }, async (req, reply) => {
    const secret = bearerSecret(req.headers.authorization);
    if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
    const key = deps.keys.bySecret(secret);
    // Write keys can be public (Segment keys ship in web pages): a key that reads nothing runs no SQL,
    // not even a table-less SELECT that would still spend the server's CPU and memory.
    if (!key.scopes.some((s) => s === "admin" || s.startsWith("read:"))) {
      throw new TributaryError(
        "TRB_AUTH_FORBIDDEN",
        `key ${key.id} has no read scope; querying needs read:<layer>.<name>, read:* or admin`,
      );
    }
    let body: unknown;
    try {
      body = typeof req.body === "string" ? JSON.parse(req.body) : req.body;
    } catch (e) {
      throw new TributaryError(
        "TRB_HTTP_BAD_REQUEST",
        `The body is not valid JSON: ${(e as Error).message}`,
      );
    }
    const sql = (body as { sql?: unknown } | null)?.sql;
    if (typeof sql !== "string")
      throw new TributaryError("TRB_HTTP_BAD_REQUEST", 'Send `{ "sql": "SELECT ..." }`.');
    // Time travel: `"snapshot": <id>` in the body or `?snapshot=<id>`.
    const raw =
      (body as { snapshot?: unknown }).snapshot ??
      (req.query as { snapshot?: string } | undefined)?.snapshot;
    let snapshot: number | undefined;
    if (raw !== undefined) {
      snapshot = Number(raw);
      if (!Number.isSafeInteger(snapshot) || snapshot < 0)
        throw new TributaryError(
          "TRB_HTTP_BAD_REQUEST",
          "`snapshot` is a snapshot id (a whole number, see GET /v1/catalog).",
        );
    }
    const result = await deps.engine.query(
      sql,
      (dataset) => deps.keys.authorize(key, { kind: "read", dataset }),
      snapshot === undefined ? {} : { snapshot },
    );
    return reply.send(result);
  });
}
