// Runs the ObjectStore contract suite against S3ObjectStore on s3rver, plus the S3-only cases.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { objectStoreContract } from "../contracts/object-store.case.js";
import { connectS3, type S3Connection } from "./connection.js";
import { S3ObjectStore, type S3ObjectStoreOptions } from "./object-store.js";
import { startS3rver, type TestS3 } from "./s3rver.test-util.js";

/** The smallest part S3 accepts, so the contract's 12 MiB object goes up in three parts. */
const PART = 5 * 1024 * 1024;

let s3: TestS3 | undefined;
const stores = new Set<S3ObjectStore>();
before(async () => {
  s3 = await startS3rver();
});
after(async () => {
  for (const s of stores) await s.close();
  await s3?.stop();
});

/** Opens a store on the test server (or on `endpoint`, the proxy in front of it). */
async function openStore(
  options: Partial<S3ObjectStoreOptions> & { cacheDir: string },
): Promise<S3ObjectStore> {
  const store = await S3ObjectStore.open({
    bucket: s3!.bucket,
    region: s3!.region,
    endpoint: s3!.endpoint,
    forcePathStyle: true,
    credentials: s3!.credentials,
    partSize: PART,
    ...options,
  });
  stores.add(store);
  return store;
}

objectStoreContract("S3ObjectStore on s3rver", (dir) =>
  openStore({ prefix: `lake/${basename(dir)}`, cacheDir: join(dir, "cache") }),
);

describe("S3ObjectStore on s3rver", () => {
  let dir = "";
  let proxy: Proxy | undefined;
  let raw: S3Connection | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "trb-s3-"));
    proxy = await startProxy(s3!.endpoint);
    raw = await connectS3({
      region: s3!.region,
      endpoint: s3!.endpoint,
      forcePathStyle: true,
      credentials: s3!.credentials,
    });
  });
  after(async () => {
    raw?.client.destroy();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A store reached through the proxy, under its own prefix unless given one. */
  function viaProxy(options: Partial<S3ObjectStoreOptions> = {}): Promise<S3ObjectStore> {
    return openStore({
      prefix: `s3-cases/${randomBytes(5).toString("hex")}`,
      cacheDir: join(dir, randomBytes(5).toString("hex")),
      endpoint: proxy!.endpoint,
      ...options,
    });
  }

  async function stage(bytes: Uint8Array): Promise<string> {
    const path = join(dir, `${randomBytes(6).toString("hex")}.bin`);
    await writeFile(path, bytes);
    return path;
  }

  async function storageClass(key: string): Promise<string | undefined> {
    const { client, sdk } = raw!;
    const head = await client.send(new sdk.HeadObjectCommand({ Bucket: s3!.bucket, Key: key }));
    return head.StorageClass;
  }

  // s3rver keeps the class a PutObject or CreateMultipartUpload names and reports it on
  // HeadObject, but stores every object alike (its listing says STANDARD for all): this checks
  // what the store sends, not any tiering.
  test("each object is sent with the put's storage class, else the store's default", async () => {
    const prefix = `s3-cases/${randomBytes(5).toString("hex")}`;
    const store = await viaProxy({ prefix, storageClass: "STANDARD_IA" });
    await store.putFile("a.bin", await stage(randomBytes(10)));
    await store.putFile("b.bin", await stage(randomBytes(10)), { storageClass: "GLACIER" });
    proxy!.log.length = 0;
    await store.putFile("c.bin", await stage(randomBytes(PART + 1024)), {
      storageClass: "DEEP_ARCHIVE",
    });
    assert.equal(proxy!.count(/^POST .*\?uploads/), 1, "a file over the part size is multipart");
    assert.equal(proxy!.count(/^PUT .*partNumber=/), 2);
    assert.equal(await storageClass(`${prefix}/a.bin`), "STANDARD_IA");
    assert.equal(await storageClass(`${prefix}/b.bin`), "GLACIER");
    assert.equal(await storageClass(`${prefix}/c.bin`), "DEEP_ARCHIVE");
    const src = await stage(randomBytes(10));
    await assert.rejects(store.putFile("d.bin", src, { storageClass: "NO_SUCH_CLASS" }), (e) => {
      assert.match(String(e), new RegExp(`s3://${s3!.bucket}/${prefix}/d\\.bin`));
      assert.match(String(e), /InvalidStorageClass/);
      return true;
    });
    assert.ok(existsSync(src), "a failed put leaves the local file");
  });

  test("a cached copy is served without a request; a put's file becomes the copy", async () => {
    const prefix = `s3-cases/${randomBytes(5).toString("hex")}`;
    const cacheDir = join(dir, randomBytes(5).toString("hex"));
    const data = randomBytes(20_000);
    const first = await viaProxy({ prefix, cacheDir });
    await first.putFile("k.bin", await stage(data));
    proxy!.log.length = 0;
    assert.ok((await readFile(await first.localPath("k.bin"))).equals(data));
    assert.deepEqual(proxy!.log, [], "the uploaded file is the copy: no request");

    // A later run over the same cache checks the copy once (HeadObject), downloads nothing.
    const second = await viaProxy({ prefix, cacheDir });
    proxy!.log.length = 0;
    assert.ok((await readFile(await second.localPath("k.bin"))).equals(data));
    assert.ok((await readFile(await second.localPath("k.bin"))).equals(data));
    assert.equal(proxy!.count(/^HEAD /), 1);
    assert.equal(proxy!.count(/x-id=GetObject/), 0);

    // An empty cache downloads once, however many callers ask at once.
    proxy!.log.length = 0;
    const third = await viaProxy({ prefix });
    proxy!.log.length = 0;
    const paths = await Promise.all([1, 2, 3, 4].map(() => third.localPath("k.bin")));
    assert.ok((await readFile(paths[0]!)).equals(data));
    assert.ok((await readFile(await third.localPath("k.bin"))).equals(data));
    assert.equal(proxy!.count(/x-id=GetObject/), 1);
  });

  test("a copy left by an earlier run is fetched again when another process replaced the object", async () => {
    const prefix = `s3-cases/${randomBytes(5).toString("hex")}`;
    const cacheDir = join(dir, randomBytes(5).toString("hex"));
    const a = await viaProxy({ prefix, cacheDir });
    await a.putFile("k.bin", await stage(Buffer.alloc(100, "a")));
    assert.ok((await readFile(await a.localPath("k.bin"))).equals(Buffer.alloc(100, "a")));
    // Another process with its own cache replaces the object with one of the same size.
    const b = await viaProxy({ prefix });
    await b.putFile("k.bin", await stage(Buffer.alloc(100, "b")));
    const restarted = await viaProxy({ prefix, cacheDir });
    proxy!.log.length = 0;
    assert.ok((await readFile(await restarted.localPath("k.bin"))).equals(Buffer.alloc(100, "b")));
    assert.equal(proxy!.count(/x-id=GetObject/), 1, "the ETag differed, so the copy was replaced");
    // Deleted by another process: the left copy is not served.
    await b.delete("k.bin");
    const again = await viaProxy({ prefix, cacheDir });
    await assert.rejects(again.localPath("k.bin"), /no such object/);
    assert.ok(!existsSync(join(cacheDir, "objects", "k.bin")), "the stale copy is removed");
  });

  test("503 answers are retried: put, list and download succeed", async () => {
    const prefix = `s3-cases/${randomBytes(5).toString("hex")}`;
    const store = await viaProxy({ prefix });
    const data = randomBytes(1000);
    proxy!.log.length = 0;
    proxy!.failNext(1, "SlowDown");
    assert.deepEqual(await store.putFile("r.bin", await stage(data)), { bytes: 1000 });
    assert.equal(proxy!.count(/^PUT /), 2, "a refusal, then the stored attempt");
    proxy!.failNext(2);
    assert.deepEqual(
      (await store.list("")).map((o) => o.key),
      ["r.bin"],
    );
    const reader = await viaProxy({ prefix });
    proxy!.failNext(2);
    assert.ok((await readFile(await reader.localPath("r.bin"))).equals(data));
  });

  test("when retries run out the error names the bucket and key, and the file stays", async () => {
    const prefix = `s3-cases/${randomBytes(5).toString("hex")}`;
    const store = await viaProxy({ prefix, maxAttempts: 2 });
    const src = await stage(randomBytes(10));
    proxy!.failNext(2);
    await assert.rejects(store.putFile("x.bin", src), (e) => {
      assert.match(String(e), new RegExp(`s3://${s3!.bucket}/${prefix}/x\\.bin`));
      assert.match(String(e), /ServiceUnavailable \(HTTP 503\)/);
      return true;
    });
    assert.ok(existsSync(src));
    assert.deepEqual(await store.list(""), []);
  });

  test(
    "a request that times out is retried",
    {
      skip:
        "the store sets no request timeout (the SDK's Node handler has none by default), so there " +
        "is no timeout to provoke; a refused or reset connection is retried like the 503 above",
    },
    () => {},
  );

  test("open rejects a missing bucket, naming it", async () => {
    await assert.rejects(
      openStore({ bucket: "no-such-bucket", cacheDir: join(dir, "nb"), maxAttempts: 1 }),
      /S3 bucket no-such-bucket at http:\/\/127\.0\.0\.1:\d+ is not reachable/,
    );
  });
});

/** An HTTP proxy in front of s3rver that logs requests and can refuse the next ones with a 503. */
interface Proxy {
  readonly endpoint: string;
  /** `METHOD /path?query` of every request since the last reset (`log.length = 0`). */
  readonly log: string[];
  count(pattern: RegExp): number;
  /**
   * Answers the next `n` requests with 503 and the error `code`: S3 sends `SlowDown` when it
   * throttles (the SDK then backs off from 500 ms) and `ServiceUnavailable` otherwise (100 ms).
   */
  failNext(n: number, code?: "SlowDown" | "ServiceUnavailable"): void;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<Proxy> {
  const log: string[] = [];
  let failing = 0;
  let refusal = "";
  const server: Server = createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    if (failing > 0) {
      failing--;
      req.resume();
      req.on("end", () => {
        res.writeHead(503, { "content-type": "application/xml" });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${refusal}</Code>` +
            "<Message>Please reduce your request rate.</Message></Error>",
        );
      });
      return;
    }
    // The host header is kept (it is signed); `expect` is not signed, and this proxy already
    // answered it.
    const { expect: _expect, ...headers } = req.headers;
    const upstream = request(new URL(req.url!, target), { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    upstream.on("error", (e) => res.destroy(e));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    log,
    count: (pattern) => log.filter((l) => pattern.test(l)).length,
    failNext: (n, code = "ServiceUnavailable") => {
      failing = n;
      refusal = code;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
