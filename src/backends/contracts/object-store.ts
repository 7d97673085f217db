// The ObjectStore contract: where lake files live (a folder, or an S3-compatible bucket).

/** Optional powers of an object store. */
export interface ObjectStoreCapabilities {
  /**
   * When set, objects are plain files under this folder and DuckDB may read them in place;
   * otherwise readers fetch objects into a local cache first.
   */
  readonly localRoot: string | undefined;
}

/** Per-object options of `putFile`. */
export interface PutFileOptions {
  /**
   * Storage class of the object (`STANDARD`, `STANDARD_IA`, `GLACIER`, …), for an archive tier;
   * the store's default when unset. Stores without storage classes (the local folder) ignore it.
   */
  readonly storageClass?: string;
}

/** One object as `list` reports it. */
export interface ObjectInfo {
  readonly key: string;
  readonly bytes: number;
  /** Last modification, milliseconds since the epoch. */
  readonly modified: number;
}

/**
 * Objects addressed by keys (`raw/flights/dt=2001-01-01/hour=00/part-….parquet`).
 *
 * - Keys are relative paths: segments joined by `/`, none empty, `.` or `..`, no leading or
 *   trailing `/`. Segments may hold `=` (Hive partitions) and other characters a file name can.
 *   A key is never the folder of another (`a/b` and `a/b/c` cannot both exist: the local store
 *   is a folder). A store rejects a key that would escape its folder.
 * - `putFile` resolves when the object is durable: the local store has fsync'd the file and its
 *   folder; a remote store has the service's acknowledgement of the whole object (S3 stores it
 *   redundantly before it answers). The store consumes the local file (moves it into place or into
 *   its cache, or deletes it once uploaded); the caller must not reuse it. A missing local file
 *   rejects and stores nothing; after any other rejection the key holds the old or the new object
 *   and the local file may remain. Putting an existing key replaces it whole, so a retried put is
 *   harmless.
 * - `list(prefix)` returns every object below the folder `prefix` (`raw/flights/`; the trailing
 *   `/` is optional, `""` lists all), unordered, however many there are: remote stores follow
 *   every page.
 * - `delete` removes the object and any cached copy; a missing key is not an error.
 * - `localPath` gives a local file DuckDB can read with the object's bytes: the file itself, or
 *   for a remote store a copy in its cache, downloaded on first use (concurrent calls share one
 *   download) and kept, since lake files are immutable once a commit names them. The copy never
 *   outlives a replacement or delete made through the same store or a store sharing its cache
 *   folder; a copy left by an earlier run is checked against the object (size and ETag, one
 *   request) before its first reuse. Other processes' replacements of a key this one already
 *   read are not seen, which is why readers only read committed (never rewritten) keys. For a
 *   missing key it rejects, or (local store) returns a path where no file exists.
 * - Errors are rejections that name the key or its path; remote stores name bucket and key and
 *   keep the SDK's error as `cause`, after retrying transient failures (throttling, 5xx,
 *   network).
 */
export interface ObjectStore {
  readonly capabilities: ObjectStoreCapabilities;
  putFile(key: string, localPath: string, options?: PutFileOptions): Promise<{ bytes: number }>;
  list(prefix: string): Promise<ObjectInfo[]>;
  delete(key: string): Promise<void>;
  /** A local path DuckDB can read for the key (the file itself, or a cached copy). */
  localPath(key: string): Promise<string>;
}
