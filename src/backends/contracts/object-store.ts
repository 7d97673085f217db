// The ObjectStore contract: where lake files live (a folder, or an S3-compatible bucket).

/** Optional powers of an object store. */
export interface ObjectStoreCapabilities {
  /**
   * When set, objects are plain files under this folder and DuckDB may read them in place;
   * otherwise readers fetch objects into a local cache first.
   */
  readonly localRoot: string | undefined;
}

/**
 * Objects addressed by keys (`raw/flights/dt=2001-01-01/hour=00/part-….parquet`).
 *
 * - `putFile` resolves when the object is durable (fsync'd file and folder, or the store's
 *   acknowledgement); it moves or copies the local file, which the caller must not reuse.
 *   Putting an existing key replaces it.
 * - `list` returns keys under a prefix, unordered. `delete` of a missing key is not an error.
 */
export interface ObjectStore {
  readonly capabilities: ObjectStoreCapabilities;
  putFile(key: string, localPath: string): Promise<{ bytes: number }>;
  list(prefix: string): Promise<{ key: string; bytes: number; modified: number }[]>;
  delete(key: string): Promise<void>;
  /** A local path DuckDB can read for the key (the file itself, or a cached copy). */
  localPath(key: string): Promise<string>;
}
