// The S3 ObjectStore: lake objects in an S3-compatible bucket, read by DuckDB from a local file cache.
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { StorageClass } from "@aws-sdk/client-s3";
import type { ObjectInfo, ObjectStore, PutFileOptions } from "../contracts/index.js";
import { connectS3, type S3Connection, type S3ConnectionOptions } from "./connection.js";

/** Options of `S3ObjectStore.open`. */
export interface S3ObjectStoreOptions extends S3ConnectionOptions {
  /** The bucket; it must exist. */
  readonly bucket: string;
  /** Folder inside the bucket that holds the lake (`lake/`); the bucket's root when unset. */
  readonly prefix?: string;
  /**
   * Local folder of the read cache (copies DuckDB reads), one per bucket and prefix. Processes may
   * share it. Nothing is evicted: size the disk for the data read, or clear it while no process runs.
   */
  readonly cacheDir: string;
  /** Files larger than this go up in multipart uploads of parts this size (at least 5 MiB). */
  readonly partSize?: number;
  /** Storage class of objects whose put names none; the bucket's default (STANDARD) when unset. */
  readonly storageClass?: string;
}

/** Default multipart part size, and the largest file sent in one PutObject. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/** Parts of one multipart upload sent at once (memory: this many parts are buffered). */
const UPLOAD_QUEUE = 4;

/** What the cache records of a copy: the object it holds. */
interface CopyInfo {
  readonly etag: string;
  readonly bytes: number;
}

/** A copy this instance checked, and the file it checked: a rename over it changes both. */
interface Verified extends CopyInfo {
  readonly ino: number;
  readonly mtimeMs: number;
}

/**
 * Objects in `s3://<bucket>/<prefix>`. `putFile` resolves once S3 acknowledged the whole object
 * (one PutObject, or a completed multipart upload), then moves the file into the read cache.
 * `localPath` serves copies from `<cacheDir>/objects/<key>`: downloaded once (to a temporary file,
 * size-checked, renamed into place), each beside its object's ETag and size in
 * `<cacheDir>/etags/<key>`. A copy this instance verified is served without a request while its
 * file is unchanged; a copy left by an earlier run or another process is checked with one
 * HeadObject first. Puts and deletes through this instance replace or drop the copy at once.
 * @example
 * const lake = await S3ObjectStore.open({ bucket: "lake", region: "us-east-1", cacheDir: "/var/cache/trb" });
 */
export class S3ObjectStore implements ObjectStore {
  readonly capabilities = { localRoot: undefined };
  readonly #s3: S3Connection;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #cacheDir: string;
  readonly #partSize: number;
  readonly #storageClass: string | undefined;
  /** Copies verified by this instance, with the file (inode, mtime) they were verified in. */
  readonly #verified = new Map<string, Verified>();
  /** Downloads in flight: concurrent `localPath` calls for one key share one. */
  readonly #downloads = new Map<string, Promise<string>>();
  /** Keys put or deleted while their download was in flight: that download must not be kept. */
  readonly #invalidated = new Set<string>();
  /** Per-key queue of cache updates, so a download and a put never rename over each other. */
  readonly #locks = new Map<string, Promise<void>>();

  private constructor(s3: S3Connection, options: S3ObjectStoreOptions) {
    this.#s3 = s3;
    this.#bucket = options.bucket;
    this.#prefix = folder(options.prefix ?? "");
    this.#cacheDir = options.cacheDir;
    this.#partSize = options.partSize ?? DEFAULT_PART_SIZE;
    this.#storageClass = options.storageClass;
  }

  /** Connects, checks that the bucket is reachable, and creates the cache folder. */
  static async open(options: S3ObjectStoreOptions): Promise<S3ObjectStore> {
    await mkdir(join(options.cacheDir, "tmp"), { recursive: true });
    const s3 = await connectS3(options);
    const store = new S3ObjectStore(s3, options);
    try {
      await s3.client.send(new s3.sdk.HeadBucketCommand({ Bucket: options.bucket }));
    } catch (e) {
      s3.client.destroy();
      throw new Error(
        `S3 bucket ${options.bucket} at ${options.endpoint ?? "AWS"} is not reachable: ${describe(e)}`,
        { cause: e },
      );
    }
    return store;
  }

  async putFile(
    key: string,
    localPath: string,
    options: PutFileOptions = {},
  ): Promise<{ bytes: number }> {
    checkKey(key);
    const { client, sdk, storage } = this.#s3;
    let bytes: number;
    try {
      bytes = (await stat(localPath)).size;
    } catch (e) {
      throw new Error(`cannot put ${this.#url(key)}: ${localPath} is not readable`, { cause: e });
    }
    const params = {
      Bucket: this.#bucket,
      Key: this.#prefix + key,
      StorageClass: (options.storageClass ?? this.#storageClass) as StorageClass | undefined,
    };
    let etag: string | undefined;
    try {
      if (bytes <= this.#partSize) {
        // A buffer, not a stream: the SDK can resend it when it retries.
        const body = await readFile(localPath);
        const out = await client.send(
          new sdk.PutObjectCommand({ ...params, Body: body, ContentLength: body.length }),
        );
        etag = out.ETag;
      } else {
        const upload = new storage.Upload({
          client,
          params: { ...params, Body: createReadStream(localPath) },
          partSize: this.#partSize,
          queueSize: UPLOAD_QUEUE,
          leavePartsOnError: false,
        });
        etag = (await upload.done()).ETag;
      }
    } catch (e) {
      throw this.#error("upload", key, e);
    }
    await this.#keep(key, localPath, { etag: etag ?? "", bytes });
    return { bytes };
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const { client, sdk } = this.#s3;
    const out: ObjectInfo[] = [];
    const full = this.#prefix + folder(prefix);
    try {
      const pages = sdk.paginateListObjectsV2({ client }, { Bucket: this.#bucket, Prefix: full });
      for await (const page of pages) {
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined) continue;
          out.push({
            key: o.Key.slice(this.#prefix.length),
            bytes: o.Size ?? 0,
            modified: o.LastModified?.getTime() ?? 0,
          });
        }
      }
    } catch (e) {
      throw new Error(`S3 list of s3://${this.#bucket}/${full} failed: ${describe(e)}`, {
        cause: e,
      });
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const { client, sdk } = this.#s3;
    try {
      await client.send(
        new sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }),
      );
    } catch (e) {
      throw this.#error("delete", key, e);
    }
    await this.#locked(key, () => this.#drop(key));
  }

  async localPath(key: string): Promise<string> {
    checkKey(key);
    const known = this.#verified.get(key);
    const path = this.#copyPath(key);
    if (known && (await holds(path, known))) return path;
    let pending = this.#downloads.get(key);
    if (!pending) {
      pending = this.#fetch(key).finally(() => {
        this.#downloads.delete(key);
        this.#invalidated.delete(key);
      });
      this.#downloads.set(key, pending);
    }
    return pending;
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    this.#s3.client.destroy();
  }

  /** Reuses a checked copy or downloads one; retries when a put or delete overtook it. */
  async #fetch(key: string): Promise<string> {
    const { client, sdk } = this.#s3;
    const path = this.#copyPath(key);
    for (;;) {
      const known = this.#verified.get(key);
      if (known && (await holds(path, known))) return path;
      const left = await this.#readEtag(key);
      if (left && (await holds(path, left))) {
        let head;
        try {
          head = await client.send(
            new sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }),
          );
        } catch (e) {
          // Deleted by another process: its copy must not be served again.
          if (isNotFound(e)) await this.#locked(key, () => this.#drop(key));
          throw this.#error("check", key, e);
        }
        if (head.ETag === left.etag && head.ContentLength === left.bytes) {
          const kept = await this.#locked(key, async () => {
            if (this.#invalidated.delete(key)) return false;
            await this.#remember(key, left);
            return true;
          });
          if (kept) return path;
          continue;
        }
      }
      const tmp = join(this.#cacheDir, "tmp", `${randomBytes(8).toString("hex")}.part`);
      try {
        const out = await client.send(
          new sdk.GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }),
        );
        await pipeline(out.Body as Readable, createWriteStream(tmp));
        const got = (await stat(tmp)).size;
        if (got !== out.ContentLength) {
          throw new Error(`received ${got} of ${out.ContentLength ?? "?"} bytes`);
        }
        const kept = await this.#locked(key, async () => {
          if (this.#invalidated.delete(key)) return false;
          await this.#install(key, tmp, { etag: out.ETag ?? "", bytes: got });
          return true;
        });
        if (kept) return path;
      } catch (e) {
        throw this.#error("download", key, e);
      } finally {
        await rm(tmp, { force: true });
      }
    }
  }

  /** After a put: the uploaded file becomes the cached copy (or is deleted, across file systems). */
  async #keep(key: string, localPath: string, info: CopyInfo): Promise<void> {
    await this.#locked(key, async () => {
      if (this.#downloads.has(key)) this.#invalidated.add(key);
      try {
        await this.#install(key, localPath, info);
        return;
      } catch (e) {
        await this.#drop(key);
        if ((e as NodeJS.ErrnoException).code !== "EXDEV") {
          throw new Error(`stored ${this.#url(key)} but cannot cache ${localPath}`, { cause: e });
        }
      }
      // The staged file is on another file system than the cache: the first read downloads it.
      try {
        await rm(localPath, { force: true });
      } catch (e) {
        throw new Error(`stored ${this.#url(key)} but cannot remove ${localPath}`, { cause: e });
      }
    });
  }

  /** Renames `file` into the cache as the copy of `key`, recording what it holds. */
  async #install(key: string, file: string, info: CopyInfo): Promise<void> {
    const path = this.#copyPath(key);
    const etagPath = this.#etagPath(key);
    // The old record goes first: a crash between the steps leaves a copy without one, which is
    // downloaded again, never a record vouching for the wrong bytes.
    this.#verified.delete(key);
    await rm(etagPath, { force: true });
    await mkdir(dirname(path), { recursive: true });
    await rename(file, path);
    await mkdir(dirname(etagPath), { recursive: true });
    const tmp = join(this.#cacheDir, "tmp", `${randomBytes(8).toString("hex")}.etag`);
    await writeFile(tmp, JSON.stringify(info));
    await rename(tmp, etagPath);
    await this.#remember(key, info);
  }

  /** Forgets and removes the cached copy of `key`. */
  async #drop(key: string): Promise<void> {
    if (this.#downloads.has(key)) this.#invalidated.add(key);
    this.#verified.delete(key);
    await rm(this.#etagPath(key), { force: true });
    await rm(this.#copyPath(key), { force: true });
  }

  async #remember(key: string, info: CopyInfo): Promise<void> {
    const st = await stat(this.#copyPath(key));
    this.#verified.set(key, { ...info, ino: st.ino, mtimeMs: st.mtimeMs });
  }

  async #readEtag(key: string): Promise<CopyInfo | undefined> {
    try {
      return JSON.parse(await readFile(this.#etagPath(key), "utf8")) as CopyInfo;
    } catch (e) {
      // Missing, or cut short by a crash: either way the copy is downloaded again.
      if ((e as NodeJS.ErrnoException).code === "ENOENT" || e instanceof SyntaxError) {
        return undefined;
      }
      throw e;
    }
  }

  /** Runs `fn` after every earlier cache update of `key`. */
  async #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#locks.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }

  #copyPath(key: string): string {
    return join(this.#cacheDir, "objects", key);
  }

  #etagPath(key: string): string {
    return join(this.#cacheDir, "etags", key);
  }

  #url(key: string): string {
    return `s3://${this.#bucket}/${this.#prefix}${key}`;
  }

  #error(what: string, key: string, e: unknown): Error {
    const why = isNotFound(e) ? "no such object" : describe(e);
    return new Error(`S3 ${what} of ${this.#url(key)} failed: ${why}`, { cause: e });
  }
}

/** Rejects keys that are not relative paths: the cache mirrors keys as files. */
function checkKey(key: string): void {
  if (key.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw new Error(`invalid object key "${key}": use relative paths without empty, . or .. parts`);
  }
}

/** `a/b` → `a/b/`; `""` stays the root. */
function folder(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}

/** True when a file of the copy's size is at `path` (and, once verified, still the same file). */
async function holds(path: string, copy: CopyInfo | Verified): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (st === undefined || st.size !== copy.bytes) return false;
  return !("ino" in copy) || (st.ino === copy.ino && st.mtimeMs === copy.mtimeMs);
}

/** True for S3's answer that an object (or bucket) does not exist. */
function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    err.name === "NoSuchKey" || err.name === "NotFound" || err.$metadata?.httpStatusCode === 404
  );
}

/** An SDK error as `Name (HTTP status): message`. */
function describe(e: unknown): string {
  const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  const name = err.name ?? "Error";
  const message = err.message ?? String(e);
  const head = status === undefined ? name : `${name} (HTTP ${status})`;
  return message === "" || message === name ? head : `${head}: ${message}`;
}
