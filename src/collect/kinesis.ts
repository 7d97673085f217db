// Kinesis- and Firehose-compatible `POST /` (JSON 1.1 protocol, SigV4), answered in AWS's own shapes.
import type { FastifyInstance, FastifyReply } from "fastify";
import { TributaryError, isTributaryError, type ErrorCode } from "../errors.js";
import type { KeyRing } from "../govern/index.js";
import type { Collector, IngestItem, ItemResult } from "./collector.js";
import { bodyText } from "./routes.js";
import { verifySigV4 } from "./sigv4.js";

/** AWS limits of PutRecords / PutRecordBatch: 500 records per call. */
const MAX_RECORDS = 500;

/** AWS's error type names for our codes, so AWS SDKs raise (and retry) the right exceptions. */
const AWS_TYPES: Partial<Record<ErrorCode, string>> = {
  TRB_COLLECT_STREAM_NOT_FOUND: "ResourceNotFoundException",
  TRB_AUTH_MISSING: "MissingAuthenticationTokenException",
  TRB_AUTH_INVALID: "UnrecognizedClientException",
  TRB_AUTH_FORBIDDEN: "AccessDeniedException",
  TRB_COLLECT_SIGNATURE_INVALID: "InvalidSignatureException",
  TRB_COLLECT_BODY_MALFORMED: "SerializationException",
  TRB_COLLECT_TOO_MANY_EVENTS: "InvalidArgumentException",
  TRB_COLLECT_UNKNOWN_OPERATION: "UnknownOperationException",
  TRB_HTTP_BAD_REQUEST: "InvalidArgumentException",
  // The SDKs treat these as throttling and retry with backoff.
  TRB_COLLECT_OVERLOADED: "ProvisionedThroughputExceededException",
  TRB_HTTP_SHUTTING_DOWN: "ServiceUnavailableException",
};

type Operation =
  "Kinesis.PutRecord" | "Kinesis.PutRecords" | "Firehose.PutRecord" | "Firehose.PutRecordBatch";

const OPERATIONS: Record<string, Operation> = {
  "Kinesis_20131202.PutRecord": "Kinesis.PutRecord",
  "Kinesis_20131202.PutRecords": "Kinesis.PutRecords",
  "Firehose_20150804.PutRecord": "Firehose.PutRecord",
  "Firehose_20150804.PutRecordBatch": "Firehose.PutRecordBatch",
};

/** Registers `POST /` for Kinesis Data Streams and Firehose producers (the AWS SDKs, the KPL/agent). */
export function registerKinesisRoutes(
  app: FastifyInstance,
  deps: { collector: Collector; keys: KeyRing; bodyLimit: number; maxEventSize: number },
): void {
  app.post("/", { bodyLimit: deps.bodyLimit }, async (req, reply) => {
    try {
      const target = String(req.headers["x-amz-target"] ?? "");
      const op = OPERATIONS[target];
      if (!op)
        throw new TributaryError(
          "TRB_COLLECT_UNKNOWN_OPERATION",
          `Unsupported X-Amz-Target \`${target}\`.`,
        );
      const body = bodyText(req);
      const key = await verifySigV4(
        { method: req.method, url: req.url, headers: req.headers, body },
        (id) => deps.keys.byId(id),
      );
      deps.collector.admit(body.length);
      const input = parseInput(body);
      const stream = streamName(op, input);
      deps.collector.plan(stream);
      deps.keys.authorize(key, { kind: "write", stream });
      const datas = recordsOf(op, input);
      const items = datas.map((d) => decode(d, deps.maxEventSize));
      const results = await deps.collector.ingest(
        stream,
        items,
        op.startsWith("Kinesis") ? "kinesis" : "firehose",
      );
      return reply.header("Content-Type", "application/x-amz-json-1.1").send(respond(op, results));
    } catch (e) {
      return sendAwsError(reply, e);
    }
  });
}

function parseInput(body: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body) as unknown;
    if (v !== null && typeof v === "object" && !Array.isArray(v))
      return v as Record<string, unknown>;
  } catch {
    // fall through to the coded error below; the parser's message adds nothing for AWS clients
  }
  throw new TributaryError("TRB_COLLECT_BODY_MALFORMED", "The body must be a JSON 1.1 object.");
}

function streamName(op: Operation, input: Record<string, unknown>): string {
  const name = op.startsWith("Kinesis") ? input.StreamName : input.DeliveryStreamName;
  if (typeof name === "string" && name.length > 0) return name;
  const arn = op.startsWith("Kinesis") ? input.StreamARN : input.DeliveryStreamARN;
  if (typeof arn === "string") {
    const m = /:(?:stream|deliverystream)\/([^/]+)$/.exec(arn);
    if (m) return m[1]!;
  }
  throw new TributaryError(
    "TRB_HTTP_BAD_REQUEST",
    op.startsWith("Kinesis") ? "StreamName is required." : "DeliveryStreamName is required.",
  );
}

function recordsOf(op: Operation, input: Record<string, unknown>): unknown[] {
  switch (op) {
    case "Kinesis.PutRecord":
      return [input.Data];
    case "Firehose.PutRecord":
      return [(input.Record as { Data?: unknown } | undefined)?.Data];
    case "Kinesis.PutRecords":
    case "Firehose.PutRecordBatch": {
      const records = input.Records;
      if (!Array.isArray(records) || records.length === 0)
        throw new TributaryError("TRB_HTTP_BAD_REQUEST", "Records must be a non-empty array.");
      if (records.length > MAX_RECORDS) {
        throw new TributaryError(
          "TRB_COLLECT_TOO_MANY_EVENTS",
          `${records.length} records in one call; the limit is ${MAX_RECORDS}.`,
        );
      }
      return records.map((r) => (r as { Data?: unknown } | null)?.Data);
    }
  }
}

/** A record's Data (base64) as an event; bytes that are not one JSON value are dead-lettered. */
function decode(data: unknown, maxEventSize: number): IngestItem {
  if (typeof data !== "string")
    return { raw: JSON.stringify(data ?? null), reason: "Data must be a base64 string" };
  const text = Buffer.from(data, "base64").toString("utf8");
  try {
    return {
      value: JSON.parse(text) as unknown,
      size: text.length > maxEventSize ? text.length : 0,
    };
  } catch (e) {
    return { raw: text, reason: `Data is not JSON: ${(e as Error).message}` };
  }
}

function respond(op: Operation, results: readonly ItemResult[]): Record<string, unknown> {
  const first = results[0]!;
  switch (op) {
    case "Kinesis.PutRecord":
      return {
        SequenceNumber: String(first.seq),
        ShardId: "shardId-000000000000",
        EncryptionType: "NONE",
      };
    case "Kinesis.PutRecords":
      return {
        FailedRecordCount: 0,
        EncryptionType: "NONE",
        Records: results.map((r) => ({
          SequenceNumber: String(r.seq),
          ShardId: "shardId-000000000000",
          // Not in AWS's shape; SDKs ignore it. Dead letters are stored (dlq.<stream>), so not failed.
          ...(r.status === "dead_lettered" ? { DeadLetterReason: r.reason } : {}),
        })),
      };
    case "Firehose.PutRecord":
      return { RecordId: first.id, Encrypted: false };
    case "Firehose.PutRecordBatch":
      return {
        FailedPutCount: 0,
        Encrypted: false,
        RequestResponses: results.map((r) => ({
          RecordId: r.id,
          ...(r.status === "dead_lettered" ? { DeadLetterReason: r.reason } : {}),
        })),
      };
  }
}

/** AWS JSON 1.1 error: `__type` and `message` for the SDKs, and Tributary's coded `error`. */
function sendAwsError(reply: FastifyReply, e: unknown): FastifyReply {
  const err = isTributaryError(e) ? e : new TributaryError("TRB_INTERNAL", undefined, { cause: e });
  if (err.code === "TRB_INTERNAL") reply.log.error({ err: e }, "kinesis request failed");
  const type =
    AWS_TYPES[err.code] ?? (err.status >= 500 ? "InternalFailure" : "InvalidArgumentException");
  const status = err.code === "TRB_COLLECT_OVERLOADED" ? 429 : err.status;
  if (err.retryAfter !== undefined) void reply.header("Retry-After", String(err.retryAfter));
  return reply
    .code(status)
    .header("Content-Type", "application/x-amz-json-1.1")
    .header("x-amzn-ErrorType", type)
    .send({ __type: type, message: err.message, ...err.toBody() });
}
