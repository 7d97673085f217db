// The Fastify server shared by every role: body parsing, coded errors, health and metrics routes.
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
} from "fastify";
import {
  createServer as createHttp1Server,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import {
  createServer as createH2cServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import { Server as NetServer, type Socket } from "node:net";
import { getHeapStatistics } from "node:v8";
import underPressure from "@fastify/under-pressure";
import type { Logger } from "pino";
import { TributaryError } from "../errors.js";
import { metrics, registry } from "../telemetry.js";

/** Content types whose bodies reach handlers as text; each route parses what it accepts. */
const TEXT_TYPES = [
  "application/json",
  "application/x-ndjson",
  "application/ndjson",
  "application/jsonl",
  "application/x-amz-json-1.1",
  "text/plain",
];

/**
 * Creates the HTTP server with Tributary's conventions: every error is
 * `{ "error": { "code", "message" } }` with its status (and Retry-After on 429/503).
 */
export async function createHttpServer(options: {
  log: Logger;
  bodyLimit: number;
  isReady: () => boolean;
}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    // Per-request lines would dominate the log at ingest rates; errors are logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    return503OnClosing: true,
    // Fastify types the raw server as http.Server; the dual server offers the methods Fastify calls.
    serverFactory: (handler) => dualProtocolServer(handler) as unknown as Server,
  });
  // Shed load before memory or event-loop delay grows without bound: 503 with Retry-After.
  await app.register(underPressure, {
    maxEventLoopDelay: 2000,
    maxHeapUsedBytes: Math.floor(getHeapStatistics().heap_size_limit * 0.85),
    retryAfter: 1,
    pressureHandler: (_req, reply, type) => {
      const err = new TributaryError(
        "TRB_HTTP_OVERLOADED",
        `The server is under pressure (${type}); retry after Retry-After.`,
        {
          retryAfter: 1,
        },
      );
      metrics.collectErrors.inc({ code: err.code });
      void reply.code(err.status).header("Retry-After", "1").send(err.toBody());
    },
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(TEXT_TYPES, { parseAs: "string" }, (_req, body, done) =>
    done(null, body),
  );
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: FastifyError | TributaryError, req, reply) => {
    const err = toTributaryError(error);
    metrics.collectErrors.inc({ code: err.code });
    if (
      err.status >= 500 &&
      err.code !== "TRB_COLLECT_OVERLOADED" &&
      err.code !== "TRB_HTTP_SHUTTING_DOWN"
    ) {
      req.log.error({ err: error, url: req.url }, "request failed");
    }
    if (err.retryAfter !== undefined) void reply.header("Retry-After", String(err.retryAfter));
    void reply.code(err.status).send(err.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    const err = new TributaryError(
      "TRB_HTTP_NOT_FOUND",
      `No route ${req.method} ${req.url}; see docs/reference/http-api.md.`,
    );
    void reply.code(404).send(err.toBody());
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) =>
    options.isReady()
      ? { status: "ready" }
      : reply.code(503).header("Retry-After", "1").send({ status: "starting or stopping" }),
  );
  app.get("/metrics", async (_req, reply) => {
    void reply.header("Content-Type", registry.contentType);
    return registry.metrics();
  });
  return app;
}

/** Maps Fastify's own errors to coded ones. */
function toTributaryError(error: FastifyError | TributaryError): TributaryError {
  if (error instanceof TributaryError) return error;
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new TributaryError("TRB_HTTP_BODY_TOO_LARGE", undefined, { cause: error });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new TributaryError("TRB_HTTP_UNSUPPORTED_MEDIA_TYPE", undefined, { cause: error });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new TributaryError("TRB_HTTP_BAD_REQUEST", error.message, { cause: error });
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new TributaryError("TRB_HTTP_BAD_REQUEST", error.message, { cause: error });
  }
  return new TributaryError("TRB_INTERNAL", undefined, { cause: error });
}

/** The HTTP/2 connection preface (RFC 9113 §3.4) that h2c clients with prior knowledge open with. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * HTTP/1.1 and cleartext HTTP/2 on one port. The AWS SDK's Kinesis client only speaks HTTP/2
 * (NodeHttp2Handler) and, given an http:// endpoint, opens with the HTTP/2 preface; an HTTP/1-only
 * server fails it with "Protocol error". curl, fetch, Segment and Firehose clients speak HTTP/1.1.
 * Each connection goes to the server its first bytes name; Fastify handles both request kinds.
 */
function dualProtocolServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): NetServer {
  const h1 = createHttp1Server(handler);
  // Fastify takes HTTP/2 compat requests too (it checks httpVersionMajor per request).
  const h2 = createH2cServer(
    handler as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  );
  const sessions = new Set<Http2Session>();
  h2.on("session", (session: Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // What Fastify does for the HTTP/2 servers it creates (http2SessionTimeout): idle sessions end.
    session.setTimeout(72_000, () => session.close());
  });
  /** Connections that have not yet sent enough bytes to tell the protocol. */
  const sniffing = new Set<Socket>();
  const route = (socket: Socket, seen: Buffer): void => {
    socket.once("data", (chunk: Buffer) => {
      const head = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(head.length, H2_PREFACE.length);
      const h2c = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2c && n < H2_PREFACE.length) return route(socket, head);
      sniffing.delete(socket);
      socket.setTimeout(0);
      socket.removeListener("error", drop);
      socket.pause();
      socket.unshift(head);
      (h2c ? h2 : h1).emit("connection", socket);
      process.nextTick(() => socket.resume());
    });
  };
  function drop(this: Socket): void {
    sniffing.delete(this);
    this.destroy();
  }
  const server = new NetServer((socket) => {
    sniffing.add(socket);
    // Until a server owns the socket, a reset must not go unhandled and a silent client must not stay.
    socket.on("error", drop);
    socket.once("close", () => sniffing.delete(socket));
    socket.setTimeout(h1.headersTimeout, () => drop.call(socket));
    route(socket, Buffer.alloc(0));
  });
  // The HTTP/1 server never listens itself; 'listening' starts its connection tracking (which
  // closeIdleConnections needs) and its header and request timeouts.
  server.on("listening", () => h1.emit("listening"));
  const closeNet = server.close.bind(server);
  // Fastify calls these on close: idle keep-alive connections and HTTP/2 sessions must not hold it open.
  return Object.assign(server, {
    close(callback?: (err?: Error) => void): NetServer {
      h1.close(() => undefined);
      return closeNet(callback);
    },
    closeIdleConnections: (): void => {
      h1.closeIdleConnections();
      for (const s of sessions) s.close();
      for (const s of sniffing) drop.call(s);
    },
    closeAllConnections: (): void => {
      h1.closeAllConnections();
      for (const s of sessions) s.destroy();
      for (const s of sniffing) drop.call(s);
    },
  });
}
