// Every error Tributary reports, coded once: HTTP status and a message that says what to do next.
// docs/reference/errors.md documents each code; test/unit/errors-doc.test.ts keeps both in sync.
// Codes are never reused: retire a code by leaving it here with `retired: true`.

/** One entry of the error catalogue. */
export interface ErrorSpec {
  /** HTTP status the error maps to when it reaches a client. */
  readonly status: number;
  /** Default message: what happened and what to do next. */
  readonly message: string;
}

/** The error catalogue, `TRB_<STAGE>_<WHAT>`. */
export const ERRORS = {
  TRB_CONFIG_NOT_FOUND: {
    status: 500,
    message: "No tributary.yaml found; run `tributary init` or pass the project folder.",
  },
  TRB_CONFIG_INVALID: {
    status: 500,
    message: "The pipeline config is invalid; fix the key named in the message.",
  },
  TRB_AUTH_MISSING: {
    status: 401,
    message: "Send a key: `Authorization: Bearer <secret>` (Basic auth user for Segment).",
  },
  TRB_AUTH_INVALID: {
    status: 401,
    message: "The key is not known; check the secret against tributary.yaml `keys`.",
  },
  TRB_AUTH_FORBIDDEN: {
    status: 403,
    message: "The key lacks the scope for this request; grant it in tributary.yaml `keys`.",
  },
  TRB_HTTP_NOT_FOUND: { status: 404, message: "No such route; see docs/reference/http-api.md." },
  TRB_HTTP_BODY_TOO_LARGE: {
    status: 413,
    message: "The request body exceeds the endpoint's limit; send smaller batches.",
  },
  TRB_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: "Send application/json or application/x-ndjson.",
  },
  TRB_HTTP_BAD_REQUEST: { status: 400, message: "The request is malformed." },
  TRB_HTTP_OVERLOADED: {
    status: 503,
    message: "The server is under pressure (memory or event-loop delay); retry after Retry-After.",
  },
  TRB_HTTP_SHUTTING_DOWN: {
    status: 503,
    message: "The server is shutting down; retry against another instance or after restart.",
  },
  TRB_COLLECT_STREAM_NOT_FOUND: {
    status: 404,
    message: "No such stream; declare it under `streams` in tributary.yaml.",
  },
  TRB_COLLECT_BODY_MALFORMED: {
    status: 400,
    message: "The body is not valid JSON (array or object) or NDJSON; nothing was stored.",
  },
  TRB_COLLECT_TOO_MANY_EVENTS: {
    status: 413,
    message: "Too many events in one request; split the batch.",
  },
  TRB_COLLECT_OVERLOADED: {
    status: 503,
    message: "Ingest is over its in-flight limit; retry after the Retry-After delay.",
  },
  TRB_COLLECT_SIGNATURE_INVALID: {
    status: 403,
    message: "The AWS SigV4 signature does not match; sign with the key id and secret.",
  },
  TRB_COLLECT_UNKNOWN_OPERATION: {
    status: 400,
    message:
      "Unsupported X-Amz-Target; supported: Kinesis PutRecord(s), Firehose PutRecord(Batch).",
  },
  TRB_COLLECT_SEGMENT_UNBOUND: {
    status: 403,
    message: "This write key has no Segment stream; set `segment_stream` on the key.",
  },
  TRB_STREAM_CLOSED: {
    status: 503,
    message: "The stream is closed (shutting down); retry after restart.",
  },
  TRB_QUEUE_CLOSED: {
    status: 503,
    message: "The job queue is closed (shutting down); retry after restart.",
  },
  TRB_STREAM_UNAVAILABLE: {
    status: 503,
    message:
      "The stream backend is not answering (a server down or electing a leader); retry shortly.",
  },
  TRB_STREAM_UNKNOWN: { status: 500, message: "The stream is not open in this backend." },
  TRB_LAND_WRITE_FAILED: {
    status: 500,
    message: "Writing a lake file failed; the events stay in the stream and will be retried.",
  },
  TRB_LAND_FLUSH_TIMEOUT: {
    status: 504,
    message: "Landing did not commit in time; check the logs of the land stage and retry.",
  },
  TRB_LAND_NOT_RUNNING: {
    status: 409,
    message: "This process does not run the land stage, so it cannot flush to the lake.",
  },
  TRB_CATALOG_CONFLICT: {
    status: 409,
    message: "Another committer moved the stream position first; the batch is retried.",
  },
  TRB_CATALOG_UNKNOWN_DATASET: {
    status: 404,
    message: "No such dataset; list them with `tributary catalog` or GET /v1/catalog.",
  },
  TRB_SERVE_SQL_INVALID: {
    status: 400,
    message: "The SQL does not parse; send one SELECT statement.",
  },
  TRB_SERVE_SQL_FORBIDDEN: {
    status: 400,
    message: "Only one read-only SELECT over catalog tables is allowed.",
  },
  TRB_SERVE_SQL_UNKNOWN_TABLE: {
    status: 400,
    message: "The SQL names a table that is not in the catalog; see GET /v1/catalog.",
  },
  TRB_SERVE_SQL_FAILED: { status: 400, message: "The query failed; fix the SQL." },
  TRB_SERVE_QUERY_TIMEOUT: {
    status: 408,
    message: "The query ran past the time limit; narrow it or add filters.",
  },
  TRB_SERVE_RESULT_TOO_LARGE: {
    status: 413,
    message: "The result has more rows than allowed; add LIMIT or aggregate.",
  },
  TRB_SERVE_BUSY: {
    status: 429,
    message: "Too many queries are running; retry after the Retry-After delay.",
  },
  TRB_SERVE_UNKNOWN_SNAPSHOT: {
    status: 404,
    message: "No such catalog snapshot; list them with GET /v1/catalog.",
  },
  TRB_BATCH_MODEL_INVALID: {
    status: 400,
    message: "A model file or its properties are invalid; the message names the file and line.",
  },
  TRB_BATCH_UNKNOWN_TABLE: {
    status: 400,
    message: "A model reads a table that no stream, seed or model provides.",
  },
  TRB_BATCH_UNKNOWN_COLUMN: {
    status: 400,
    message: "A model names a column its inputs do not have.",
  },
  TRB_BATCH_CYCLE: {
    status: 400,
    message: "Models read each other in a cycle; break it.",
  },
  TRB_BATCH_DAY_COLUMN: {
    status: 400,
    message: "A partitioned model must output a `day` column of type DATE.",
  },
  TRB_BATCH_DAY_OUT_OF_RANGE: {
    status: 500,
    message: "A model produced rows for days it was not asked to build.",
  },
  TRB_BATCH_TASK_FAILED: {
    status: 500,
    message: "A model failed while running; the previous partition stays visible.",
  },
  TRB_BATCH_TEST_FAILED: {
    status: 500,
    message: "A data test failed; the partition is marked failed and its dependents wait.",
  },
  TRB_BATCH_BAD_DATE: {
    status: 400,
    message: "Dates are YYYY-MM-DD, and `from` is not after `to`.",
  },
  TRB_BATCH_BUSY: {
    status: 409,
    message: "A batch run is in progress; wait for it (GET /v1/batch/runs) and retry.",
  },
  TRB_BATCH_UNKNOWN_MODEL: {
    status: 404,
    message: "No such model; `tributary batch plan` lists them.",
  },
  TRB_SEED_INVALID: {
    status: 400,
    message: "A seed file cannot be read as a table; check its format and header.",
  },
  TRB_INTERNAL: { status: 500, message: "Internal error; see the server log." },
} as const satisfies Record<string, ErrorSpec>;

/** A known error code. */
export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code, an HTTP status and an optional hint for the client. */
export class TributaryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before retrying (sent as Retry-After). */
  readonly retryAfter: number | undefined;
  /** Extra JSON-safe details for the response body. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { cause?: unknown; retryAfter?: number; details?: Record<string, unknown> } = {},
  ) {
    super(message ?? ERRORS[code].message, { cause: options.cause });
    this.name = "TributaryError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.retryAfter = options.retryAfter;
    this.details = options.details;
  }

  /** The body every HTTP error has: `{ "error": { "code", "message" } }`. */
  toBody(): { error: { code: string; message: string } & Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...(this.details ?? {}) } };
  }
}

/** True when `e` is a TributaryError, optionally of the given code. */
export function isTributaryError(e: unknown, code?: ErrorCode): e is TributaryError {
  return e instanceof TributaryError && (code === undefined || e.code === code);
}
