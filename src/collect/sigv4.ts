// Verifies AWS Signature Version 4 on Kinesis/Firehose-compatible requests with the AWS signer itself.
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import type { KeyPlan } from "../config/index.js";
import { TributaryError } from "../errors.js";

/** How far a request's X-Amz-Date may be from the server clock (AWS allows 15 minutes). */
const MAX_SKEW_MS = 15 * 60 * 1000;

/** The parts of an incoming request a signature covers. */
export interface SignedRequest {
  readonly method: string;
  /** Path and query as received, e.g. `/` or `/?x=1`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** Node's SHA-256 / HMAC in the shape the AWS signer expects (what @smithy/hash-node does). */
class Sha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash =
      secret === undefined ? createHash("sha256") : createHmac("sha256", toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const AUTH =
  /^AWS4-HMAC-SHA256\s+Credential=([^/\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})\s*$/;

/**
 * Checks the request's SigV4 signature: the access key id must be a key id whose secret is known,
 * and the signature must equal the one the AWS signer computes for the same signed headers and body.
 * Returns the key. Throws TRB_AUTH_MISSING, TRB_AUTH_INVALID or TRB_COLLECT_SIGNATURE_INVALID.
 */
export async function verifySigV4(
  req: SignedRequest,
  keyById: (id: string) => KeyPlan | undefined,
  now = Date.now(),
): Promise<KeyPlan> {
  const auth = header(req.headers, "authorization");
  if (auth === undefined)
    throw new TributaryError(
      "TRB_AUTH_MISSING",
      "Sign the request with AWS SigV4 (key id and secret).",
    );
  const m = AUTH.exec(auth);
  if (!m)
    throw new TributaryError(
      "TRB_COLLECT_SIGNATURE_INVALID",
      "The Authorization header is not an AWS4-HMAC-SHA256 signature.",
    );
  const [, keyId, , region, service, signedList, signature] = m as unknown as string[];
  const key = keyById(keyId!);
  if (!key) throw new TributaryError("TRB_AUTH_INVALID", `No key with id ${keyId}.`);
  if (key.secret === undefined) {
    throw new TributaryError(
      "TRB_AUTH_INVALID",
      `Key ${keyId} is stored only as a hash; give it a \`secret\` to accept SigV4 clients.`,
    );
  }
  const amzDate = header(req.headers, "x-amz-date");
  const signingDate = amzDate ? parseAmzDate(amzDate) : undefined;
  if (signingDate === undefined)
    throw new TributaryError(
      "TRB_COLLECT_SIGNATURE_INVALID",
      "X-Amz-Date is missing or malformed.",
    );
  if (Math.abs(now - signingDate.getTime()) > MAX_SKEW_MS) {
    throw new TributaryError(
      "TRB_COLLECT_SIGNATURE_INVALID",
      "The signature expired: X-Amz-Date is more than 15 minutes from the server clock.",
    );
  }
  const signed = signedList!.split(";");
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = header(req.headers, name);
    if (v === undefined)
      throw new TributaryError(
        "TRB_COLLECT_SIGNATURE_INVALID",
        `Signed header ${name} is missing.`,
      );
    headers[name] = v;
  }
  const q = req.url.indexOf("?");
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query: Record<string, string> = {};
  if (q >= 0) for (const [k, v] of new URLSearchParams(req.url.slice(q + 1))) query[k] = v;
  const signer = new SignatureV4({
    credentials: { accessKeyId: keyId!, secretAccessKey: key.secret },
    region: region!,
    service: service!,
    sha256: Sha256,
  });
  const expected = await signer.sign(
    {
      method: req.method,
      protocol: "http:",
      hostname: headers.host ?? "",
      path,
      query,
      headers,
      body: req.body,
    },
    { signingDate, signingRegion: region!, signingService: service! },
  );
  const got =
    /Signature=([0-9a-f]{64})/.exec(String(expected.headers.authorization ?? ""))?.[1] ?? "";
  if (
    got.length !== signature!.length ||
    !timingSafeEqual(Buffer.from(got), Buffer.from(signature!))
  ) {
    throw new TributaryError("TRB_COLLECT_SIGNATURE_INVALID");
  }
  return key;
}

function header(headers: SignedRequest["headers"], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(",") : v;
}

function parseAmzDate(v: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}
