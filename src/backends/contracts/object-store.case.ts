// The ObjectStore contract suite: every ObjectStore backend runs it (see object-store.ts for the contract it checks).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ObjectStore } from "./object-store.js";

/** Cases a backend may skip, each with the reason it gives; and sizes it needs. */
export interface ObjectStoreContractOptions {
  readonly skip?: Partial<Record<"largeObject" | "restart", string>>;
  /**
   * Size of the large-object case, above the store's multipart threshold (default 12 MiB: three
   * parts of 5 MiB, the smallest part S3 accepts).
   */
  readonly largeBytes?: number;
}

/**
 * Makes an ObjectStore whose state lives in `dir` (or, for a server backend, is keyed by it): two
 * calls with one `dir` are two instances over the same objects. The suite stages the files it puts
 * under `<dir>/staging`, so keep the store's own files elsewhere in `dir`.
 */
export type MakeObjectStore = (dir: string) => ObjectStore | Promise<ObjectStore>;

/** More than one page of S3's ListObjectsV2 (1000 keys). */
const MANY = 1100;

/**
 * Runs the ObjectStore contract against one backend.
 * @example objectStoreContract("local", (dir) => new LocalObjectStore(join(dir, "lake")));
 */
export function objectStoreContract(
  name: string,
  makeStore: MakeObjectStore,
  options: ObjectStoreContractOptions = {},
): void {
  const skip = options.skip ?? {};
  const largeBytes = options.largeBytes ?? 12 * 1024 * 1024;

  describe(`ObjectStore contract: ${name}`, () => {
    // One instance serves every case; each case works under its own key prefix, which also keeps
    // cases apart on backends whose state outlives the folder (a shared server).
    let dir = "";
    let staging = "";
    let store: ObjectStore | undefined;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "trb-objects-"));
      staging = join(dir, "staging");
      mkdirSync(staging);
      store = await makeStore(dir);
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    /** Writes `bytes` to a new local file for `putFile`. */
    async function stage(bytes: Uint8Array): Promise<string> {
      const path = join(staging, `${randomBytes(6).toString("hex")}.bin`);
      await writeFile(path, bytes);
      return path;
    }

    /** Puts `bytes` under `key` from a freshly staged file. */
    async function put(s: ObjectStore, key: string, bytes: Uint8Array): Promise<{ bytes: number }> {
      return s.putFile(key, await stage(bytes));
    }

    /** Asserts the store serves no readable copy of a missing key. */
    async function assertMissing(s: ObjectStore, key: string): Promise<void> {
      const path = await s.localPath(key).catch(() => undefined);
      assert.ok(path === undefined || !existsSync(path), `no readable file for missing ${key}`);
    }

    test("putFile consumes the file; list and localPath give back its bytes", async () => {
      const s = store!;
      const p = prefix();
      const data = randomBytes(10_000);
      const src = await stage(data);
      assert.deepEqual(await s.putFile(`${p}a.bin`, src), { bytes: data.length });
      assert.ok(!existsSync(src), "the store consumed the local file");
      assert.deepEqual(await s.putFile(`${p}empty.bin`, await stage(new Uint8Array(0))), {
        bytes: 0,
      });
      const listed = await s.list(p);
      assert.deepEqual(listed.map((o) => [o.key, o.bytes]).sort(byKey), [
        [`${p}a.bin`, data.length],
        [`${p}empty.bin`, 0],
      ]);
      for (const o of listed) assert.ok(Number.isFinite(o.modified) && o.modified > 0);
      assert.ok((await readFile(await s.localPath(`${p}a.bin`))).equals(data));
      assert.equal((await readFile(await s.localPath(`${p}empty.bin`))).length, 0);
    });

    test("putting a key again replaces it, and localPath never serves the old bytes", async () => {
      const s = store!;
      const key = `${prefix()}r.bin`;
      const v1 = Buffer.alloc(1000, "a");
      // Same size as v1, so only the content (ETag) tells them apart.
      const v2 = Buffer.alloc(1000, "b");
      const v3 = Buffer.alloc(10, "c");
      await put(s, key, v1);
      assert.ok((await readFile(await s.localPath(key))).equals(v1));
      await put(s, key, v2);
      assert.ok((await readFile(await s.localPath(key))).equals(v2), "same size, new bytes");
      await put(s, key, v3);
      assert.ok((await readFile(await s.localPath(key))).equals(v3), "new size, new bytes");
      assert.deepEqual(
        (await s.list(key.slice(0, key.lastIndexOf("/") + 1))).map((o) => [o.key, o.bytes]),
        [[key, v3.length]],
      );
    });

    test(`list returns exactly the objects below a folder, with sizes, across ${MANY} keys`, async () => {
      const s = store!;
      const p = prefix();
      const size = (i: number): number => 1 + (i % 7);
      await mapLimit(range(MANY), 32, (i) =>
        put(s, `${p}many/k${String(i).padStart(5, "0")}`, randomBytes(size(i))),
      );
      // Neighbours the folder must not match. Their names sort after `many/`: s3rver pages in
      // file-walk order, which loses a key like `many-not/x` (before `many/` in key order).
      await put(s, `${p}many_not/x`, randomBytes(1));
      await put(s, `${p}manyx`, randomBytes(1));
      const listed = await s.list(`${p}many/`);
      assert.equal(listed.length, MANY);
      const got = new Map(listed.map((o) => [o.key, o.bytes]));
      for (let i = 0; i < MANY; i++) {
        const key = `${p}many/k${String(i).padStart(5, "0")}`;
        assert.equal(got.get(key), size(i), `size of ${key}`);
      }
      assert.equal((await s.list(`${p}many`)).length, MANY, "the trailing / is optional");
      assert.deepEqual(await s.list(`${p}man`), [], "a prefix matches whole folder names");
      assert.deepEqual(await s.list(`${prefix()}`), [], "an unused folder lists nothing");
      assert.equal((await s.list(p)).length, MANY + 2);
    });

    test("delete removes the object and its cached copy; deleting a missing key resolves", async () => {
      const s = store!;
      const p = prefix();
      await put(s, `${p}d.bin`, randomBytes(100));
      await put(s, `${p}keep.bin`, randomBytes(100));
      await readFile(await s.localPath(`${p}d.bin`));
      await s.delete(`${p}d.bin`);
      assert.deepEqual(
        (await s.list(p)).map((o) => o.key),
        [`${p}keep.bin`],
      );
      await assertMissing(s, `${p}d.bin`);
      await s.delete(`${p}d.bin`);
      await s.delete(`${p}never/was.bin`);
      assert.equal((await s.list(p)).length, 1);
    });

    test("keys with = and nested folders (Hive partitions) round-trip", async () => {
      const s = store!;
      const p = `${prefix()}raw/flights/`;
      const keys = [
        `${p}dt=2001-01-01/hour=00/part-x.parquet`,
        `${p}dt=2001-01-01/hour=01/part-y.parquet`,
        `${p}dt=2001-01-02/hour=00/part-x.parquet`,
      ];
      const data = keys.map(() => randomBytes(64));
      for (const [i, key] of keys.entries()) await put(s, key, data[i]!);
      assert.deepEqual(
        (await s.list(`${p}dt=2001-01-01/`)).map((o) => o.key).sort(),
        keys.slice(0, 2),
      );
      assert.deepEqual((await s.list(p)).map((o) => o.key).sort(), keys);
      for (const [i, key] of keys.entries()) {
        assert.ok((await readFile(await s.localPath(key))).equals(data[i]!), key);
      }
    });

    test(
      "a large object (multipart upload) round-trips byte-identically",
      { skip: skip.largeObject },
      async () => {
        const s = store!;
        const key = `${prefix()}large.bin`;
        const data = randomBytes(largeBytes);
        assert.deepEqual(await put(s, key, data), { bytes: largeBytes });
        assert.deepEqual(
          (await s.list(key.slice(0, key.lastIndexOf("/") + 1))).map((o) => o.bytes),
          [largeBytes],
        );
        // Compared by digest so a failure does not print megabytes.
        assert.equal(sha256(await readFile(await s.localPath(key))), sha256(data));
      },
    );

    test("concurrent localPath calls for one key agree", async () => {
      const s = store!;
      const key = `${prefix()}c.bin`;
      const data = randomBytes(50_000);
      await put(s, key, data);
      const paths = await Promise.all(range(5).map(() => s.localPath(key)));
      assert.equal(new Set(paths).size, 1);
      assert.ok((await readFile(paths[0]!)).equals(data));
    });

    test("putFile of a missing local file rejects and stores nothing", async () => {
      const s = store!;
      const p = prefix();
      await assert.rejects(s.putFile(`${p}m.bin`, join(staging, "missing.bin")));
      assert.deepEqual(await s.list(p), []);
      await assertMissing(s, `${p}m.bin`);
    });

    test("a key that escapes the store's folder is rejected", async () => {
      const s = store!;
      const p = prefix();
      await assert.rejects(s.putFile(`${p}../../escape.bin`, await stage(randomBytes(1))));
      await assert.rejects(s.localPath(`${p}../../escape.bin`));
      await assert.rejects(s.delete(`${p}../../escape.bin`));
      assert.deepEqual(await s.list(p), []);
    });

    test(
      "a second instance over the same folder sees the first's objects, and replacements both ways",
      { skip: skip.restart },
      async () => {
        const p = prefix();
        const data = randomBytes(2000);
        await put(store!, `${p}a.bin`, data);
        await put(store!, `${p}b.bin`, randomBytes(3));
        await readFile(await store!.localPath(`${p}b.bin`));
        // The first instance stays open, as another process (or a crashed one) would leave it.
        const other = await makeStore(dir);
        assert.deepEqual((await other.list(p)).map((o) => [o.key, o.bytes]).sort(byKey), [
          [`${p}a.bin`, 2000],
          [`${p}b.bin`, 3],
        ]);
        assert.ok((await readFile(await other.localPath(`${p}a.bin`))).equals(data));
        const next = Buffer.alloc(3, "n");
        await put(other, `${p}b.bin`, next);
        assert.ok((await readFile(await store!.localPath(`${p}b.bin`))).equals(next));
        await other.delete(`${p}a.bin`);
        assert.deepEqual(
          (await store!.list(p)).map((o) => o.key),
          [`${p}b.bin`],
        );
        await assertMissing(store!, `${p}a.bin`);
      },
    );
  });
}

/** A key prefix (a folder) no other case, or earlier run against a shared server, uses. */
function prefix(): string {
  return `t_${randomBytes(5).toString("hex")}/`;
}

function byKey(a: (string | number)[], b: (string | number)[]): number {
  return String(a[0]).localeCompare(String(b[0]));
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(range(Math.min(limit, items.length)).map(worker));
  return out;
}
