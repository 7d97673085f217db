// Looks up API keys by secret (hashed) or id, and answers what a key may do.
import { createHash, timingSafeEqual } from "node:crypto";
import type { KeyPlan } from "../config/index.js";
import { TributaryError } from "../errors.js";

/** What a request wants to do. */
export type Access =
  | { readonly kind: "write"; readonly stream: string }
  | { readonly kind: "read"; readonly dataset: string }
  | { readonly kind: "admin" };

/**
 * The keys of a pipeline. Secrets are compared by SHA-256 (they are random tokens, so a fast hash
 * is enough and keeps per-request auth cheap); only keys given with a plain secret keep it, for SigV4.
 */
export class KeyRing {
  readonly #bySha = new Map<string, KeyPlan>();
  readonly #byId = new Map<string, KeyPlan>();

  constructor(keys: readonly KeyPlan[]) {
    for (const k of keys) {
      this.#bySha.set(k.secretSha256, k);
      this.#byId.set(k.id, k);
    }
  }

  /** The key whose secret is `secret`; throws TRB_AUTH_INVALID when none. */
  bySecret(secret: string): KeyPlan {
    const digest = createHash("sha256").update(secret).digest("hex");
    const key = this.#bySha.get(digest);
    if (!key || !timingSafeEqual(Buffer.from(key.secretSha256), Buffer.from(digest))) {
      throw new TributaryError("TRB_AUTH_INVALID");
    }
    return key;
  }

  /** The key with this id (the AWS access key id), if any. */
  byId(id: string): KeyPlan | undefined {
    return this.#byId.get(id);
  }

  /** Throws TRB_AUTH_FORBIDDEN unless `key` grants `access`. */
  authorize(key: KeyPlan, access: Access): void {
    if (!allows(key, access)) {
      const what =
        access.kind === "write"
          ? `write:${access.stream}`
          : access.kind === "read"
            ? `read:${access.dataset}`
            : "admin";
      throw new TributaryError("TRB_AUTH_FORBIDDEN", `key ${key.id} lacks the scope ${what}`);
    }
  }
}

/** Whether a key's scopes grant an access. `admin` grants everything. */
export function allows(key: KeyPlan, access: Access): boolean {
  if (key.scopes.includes("admin")) return true;
  switch (access.kind) {
    case "admin":
      return false;
    case "write":
      return key.scopes.includes("write:*") || key.scopes.includes(`write:${access.stream}`);
    case "read": {
      const layer = access.dataset.split(".")[0];
      return (
        key.scopes.includes("read:*") ||
        key.scopes.includes(`read:${layer}.*`) ||
        key.scopes.includes(`read:${access.dataset}`)
      );
    }
  }
}

/** Parses `Authorization: Bearer <secret>`; undefined when the header is absent. */
export function bearerSecret(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new TributaryError("TRB_AUTH_MISSING", "Authorization must be `Bearer <secret>`.");
  return m[1];
}

/** Parses `Authorization: Basic base64(user:password)` and returns the user (Segment's write key). */
export function basicUser(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m)
    throw new TributaryError(
      "TRB_AUTH_MISSING",
      "Authorization must be `Basic base64(<write key>:)`.",
    );
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? decoded : decoded.slice(0, colon);
}
