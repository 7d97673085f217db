// Opens an S3 client for the S3 backend, loading the AWS SDK lazily so the embedded path never does.
import type { S3Client } from "@aws-sdk/client-s3";

/** Where and how to reach an S3-compatible service. */
export interface S3ConnectionOptions {
  /** Region of the bucket (`us-east-1` for most S3-compatible servers). */
  readonly region: string;
  /** Endpoint of an S3-compatible server (`http://127.0.0.1:9000`); AWS S3 when unset. */
  readonly endpoint?: string;
  /** Address buckets as `<endpoint>/<bucket>` rather than `<bucket>.<endpoint>` (most servers need it). */
  readonly forcePathStyle?: boolean;
  /** Static keys; the SDK's default chain (env, profile, instance role) when unset. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Attempts per request, first included; the SDK retries throttling, 5xx and network errors. */
  readonly maxAttempts?: number;
}

/** An S3 client with the SDK modules it came from. */
export interface S3Connection {
  readonly client: S3Client;
  readonly sdk: typeof import("@aws-sdk/client-s3");
  readonly storage: typeof import("@aws-sdk/lib-storage");
}

/** Default attempts per request. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/**
 * Loads `@aws-sdk/client-s3` and `@aws-sdk/lib-storage` and opens a client. Checksums are computed
 * and validated only when an operation requires them: S3-compatible servers (s3rver among them)
 * otherwise store the aws-chunked framing of streamed uploads as object bytes.
 * @example const { client } = await connectS3({ region: "us-east-1" });
 */
export async function connectS3(options: S3ConnectionOptions): Promise<S3Connection> {
  // The pinned SDK supports Node 20 but warns once per process that later releases will not; the
  // pin is the answer, and normal operation logs no warnings. An explicit setting is kept.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const [sdk, storage] = await Promise.all([
    import("@aws-sdk/client-s3"),
    import("@aws-sdk/lib-storage"),
  ]);
  const client = new sdk.S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? false,
    credentials: options.credentials,
    maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  return { client, sdk, storage };
}
