// Tests of keys and scopes: lookup by secret or id, what each scope grants, Authorization parsing.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KeyPlan } from "../config/index.js";
import { sha256Hex } from "../config/index.js";
import { isTributaryError } from "../errors.js";
import { KeyRing, allows, basicUser, bearerSecret, type Access } from "./key-ring.js";

function key(id: string, scopes: string[], secret = `${id}-secret-value`): KeyPlan {
  return {
    id,
    secretSha256: sha256Hex(secret),
    secret: undefined,
    scopes,
    segmentStream: undefined,
  };
}

const write = (stream: string): Access => ({ kind: "write", stream });
const read = (dataset: string): Access => ({ kind: "read", dataset });
const ADMIN: Access = { kind: "admin" };

describe("allows", () => {
  test("write:<stream> grants writing that stream only", () => {
    const k = key("w", ["write:flights"]);
    assert.equal(allows(k, write("flights")), true);
    assert.equal(allows(k, write("web")), false);
    assert.equal(allows(k, write("flights_x")), false);
    assert.equal(allows(k, read("raw.flights")), false, "writing is not reading");
    assert.equal(allows(k, ADMIN), false);
  });

  test("write:* grants writing every stream, nothing else", () => {
    const k = key("w", ["write:*"]);
    assert.equal(allows(k, write("flights")), true);
    assert.equal(allows(k, write("anything")), true);
    assert.equal(allows(k, read("raw.flights")), false);
  });

  test("read:<layer>.<name>, read:<layer>.* and read:* grant reading what they name", () => {
    const one = key("r1", ["read:raw.flights"]);
    assert.equal(allows(one, read("raw.flights")), true);
    assert.equal(allows(one, read("raw.web")), false);
    assert.equal(allows(one, read("dlq.flights")), false);
    const layer = key("r2", ["read:raw.*"]);
    assert.equal(allows(layer, read("raw.flights")), true);
    assert.equal(allows(layer, read("raw.web")), true);
    assert.equal(
      allows(layer, read("dlq.flights")),
      false,
      "read:raw.* does not reach dead letters",
    );
    assert.equal(allows(layer, read("mart.daily")), false);
    assert.equal(allows(layer, write("flights")), false);
    const all = key("r3", ["read:*"]);
    for (const d of ["raw.flights", "dlq.flights", "mart.daily"])
      assert.equal(allows(all, read(d)), true);
    assert.equal(allows(all, write("flights")), false);
    assert.equal(allows(all, ADMIN), false);
  });

  test("admin grants everything; scopes combine", () => {
    const admin = key("a", ["admin"]);
    for (const a of [ADMIN, write("flights"), read("dlq.flights")])
      assert.equal(allows(admin, a), true);
    const both = key("b", ["write:web", "read:dlq.*"]);
    assert.equal(allows(both, write("web")), true);
    assert.equal(allows(both, read("dlq.web")), true);
    assert.equal(allows(both, read("raw.web")), false);
  });
});

describe("KeyRing", () => {
  const ring = new KeyRing([
    key("writer", ["write:flights"], "writer-secret"),
    key("reader", ["read:raw.*"], "reader-secret"),
  ]);

  test("finds a key by its secret and by its id", () => {
    assert.equal(ring.bySecret("writer-secret").id, "writer");
    assert.equal(ring.bySecret("reader-secret").id, "reader");
    assert.equal(ring.byId("reader")?.scopes[0], "read:raw.*");
    assert.equal(ring.byId("nobody"), undefined);
  });

  test("an unknown secret is TRB_AUTH_INVALID; an id is not a secret", () => {
    for (const s of ["wrong", "", "writer", "writer-secret ", sha256Hex("writer-secret")]) {
      assert.throws(
        () => ring.bySecret(s),
        (e: unknown) => isTributaryError(e, "TRB_AUTH_INVALID"),
        JSON.stringify(s),
      );
    }
  });

  test("authorize throws TRB_AUTH_FORBIDDEN naming the missing scope", () => {
    const writer = ring.bySecret("writer-secret");
    ring.authorize(writer, write("flights"));
    assert.throws(
      () => ring.authorize(writer, read("raw.flights")),
      (e: unknown) =>
        isTributaryError(e, "TRB_AUTH_FORBIDDEN") &&
        /writer lacks the scope read:raw\.flights/.test(e.message),
    );
    assert.throws(
      () => ring.authorize(writer, write("web")),
      (e: unknown) => isTributaryError(e, "TRB_AUTH_FORBIDDEN") && /write:web/.test(e.message),
    );
    assert.throws(
      () => ring.authorize(writer, ADMIN),
      (e: unknown) => isTributaryError(e, "TRB_AUTH_FORBIDDEN") && /admin/.test(e.message),
    );
  });
});

describe("Authorization headers", () => {
  const missing = (e: unknown): boolean => isTributaryError(e, "TRB_AUTH_MISSING");

  test("bearerSecret reads `Bearer <secret>`", () => {
    assert.equal(bearerSecret(undefined), undefined);
    assert.equal(bearerSecret("Bearer abc.DEF-123"), "abc.DEF-123");
    assert.equal(bearerSecret("bearer   abc  "), "abc");
    for (const h of ["", "Bearer", "Bearer ", "Bearer a b", "Basic abc", "abc", "Token abc"]) {
      assert.throws(() => bearerSecret(h), missing, JSON.stringify(h));
    }
  });

  test("basicUser reads the user of `Basic base64(user:password)` (Segment's write key)", () => {
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    assert.equal(basicUser(undefined), undefined);
    assert.equal(basicUser(`Basic ${b64("write-key:")}`), "write-key");
    assert.equal(basicUser(`Basic ${b64("write-key")}`), "write-key");
    assert.equal(basicUser(`basic ${b64("write-key:ignored:x")}`), "write-key");
    assert.equal(basicUser(`Basic ${b64("ünï:")}`), "ünï");
    for (const h of ["", "Basic", "Basic !!!", "Bearer abc", `Basic ${b64("a:")} extra`]) {
      assert.throws(() => basicUser(h), missing, JSON.stringify(h));
    }
  });
});
