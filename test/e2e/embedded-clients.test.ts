// The embedded path (`tributary up` without a backends section) loads none of the distributed
// clients: every module the process resolves while starting and stopping all roles is recorded.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const SUPPORT = fileURLToPath(new URL("./support/", import.meta.url));
const CLIENTS = /node_modules\/(@nats-io|@aws-sdk|@smithy\/(?!signature-v4)|pg|pg-boss|ioredis)\//;

describe("embedded path", () => {
  it("resolves no module of NATS, the AWS SDK's S3 client, pg, pg-boss or ioredis", () => {
    const out = execFileSync(
      process.execPath,
      ["--import", `${SUPPORT}record-loads.mjs`, "--import", "tsx", `${SUPPORT}embedded-loads.ts`],
      { encoding: "utf8", env: { ...process.env, LOG_LEVEL: "silent" } },
    );
    const resolved = JSON.parse(out.trim().split("\n").pop()!) as string[];
    assert.ok(
      resolved.some((u) => u.includes("/src/runtime/node.ts")),
      `the recorder saw the node start (${resolved.length} modules)`,
    );
    assert.ok(
      resolved.some((u) => /node_modules\/fastify\//.test(u)),
      "it records packages",
    );
    assert.deepEqual(
      resolved.filter((u) => CLIENTS.test(u)),
      [],
    );
  });
});
