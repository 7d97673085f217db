// HTTP endpoints of serve: read-only SQL.
import type { FastifyInstance } from "fastify";
import { TributaryError } from "../errors.js";
import { bearerSecret, type KeyRing } from "../govern/index.js";
import { GRAIN_MS, type Grain, type ViewNode } from "../views/index.js";
import type { QueryEngine } from "./query-engine.js";
import { queryView, type ViewSources } from "./view-query.js";

/** Largest SQL request body. */
const QUERY_BODY_LIMIT = 256 * 1024;

/** What `GET /v1/views/{view}` needs: the compiled views and where their states are. */
export interface ViewRouteDeps {
  readonly views: ReadonlyMap<string, ViewNode>;
  readonly sources: (view: string) => ViewSources;
  readonly keys: KeyRing;
}

/**
 * Registers `GET /v1/views/{view}?from=&to=&grain=&<dimension>=`: the merged lambda view. `from`
 * and `to` are ISO-8601 instants (default: the day before `to`, `to` = now); `grain` defaults to
 * the view's own.
 */
export function registerViewRoutes(app: FastifyInstance, deps: ViewRouteDeps): void {
  app.get<{ Params: { view: string }; Querystring: Record<string, string> }>(
    "/v1/views/:view",
    async (req) => {
      const secret = bearerSecret(req.headers.authorization);
      if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
      const key = deps.keys.bySecret(secret);
      const name = req.params.view;
      const node = deps.views.get(name);
      if (!node)
        throw new TributaryError(
          "TRB_HTTP_NOT_FOUND",
          `No view ${name}; views: ${[...deps.views.keys()].join(", ") || "none declared"}.`,
        );
      deps.keys.authorize(key, { kind: "read", dataset: `view.${name}` });
      const { from: fromText, to: toText, grain: grainText, ...rest } = req.query;
      const to = parseInstant(toText, "to") ?? Date.now();
      const from = parseInstant(fromText, "from") ?? to - 86_400_000;
      if (from >= to) throw new TributaryError("TRB_HTTP_BAD_REQUEST", "from must be before to.");
      const grain = (grainText ?? node.grain) as Grain;
      if (!(grain in GRAIN_MS))
        throw new TributaryError("TRB_HTTP_BAD_REQUEST", "grain is minute, hour or day.");
      return queryView(
        node,
        { from, to, grain, where: new Map(Object.entries(rest)) },
        deps.sources(name),
      );
    },
  );
}

/**
 * A query parameter holding an ISO-8601 instant, as epoch ms (undefined when absent); anything
 * else is TRB_HTTP_BAD_REQUEST naming the parameter.
 */
export function parseInstant(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms))
    throw new TributaryError(
      "TRB_HTTP_BAD_REQUEST",
      `${what} is an ISO-8601 instant, not \`${text}\`.`,
    );
  return ms;
}

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
