// The embedded ObjectStore: lake objects are plain files under one folder, made durable with fsync.
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { ObjectStore, PutFileOptions } from "../contracts/index.js";

/**
 * Objects as files under `root`. `putFile` renames the staged file into place (the staging folder
 * must be on the same file system, e.g. `<root>/_staging`), then fsyncs the file and its folder,
 * so a committed catalog entry never points at a file a crash could lose. A folder has no storage
 * classes: `putFile` ignores its options.
 */
export class LocalObjectStore implements ObjectStore {
  readonly capabilities: { localRoot: string };
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
    this.capabilities = { localRoot: root };
  }

  async putFile(
    key: string,
    localPath: string,
    _options?: PutFileOptions,
  ): Promise<{ bytes: number }> {
    const target = this.#path(key);
    await mkdir(dirname(target), { recursive: true });
    await fsyncPath(localPath);
    await rename(localPath, target);
    await fsyncPath(dirname(target));
    return { bytes: (await stat(target)).size };
  }

  async list(prefix: string): Promise<{ key: string; bytes: number; modified: number }[]> {
    const base = this.#path(prefix);
    const out: { key: string; bytes: number; modified: number }[] = [];
    let entries: string[];
    try {
      entries = await readdir(base, { recursive: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    for (const entry of entries) {
      const full = join(base, entry);
      const st = await stat(full).catch(() => undefined);
      if (!st?.isFile()) continue;
      out.push({
        key: relative(this.#root, full).split(sep).join("/"),
        bytes: st.size,
        modified: st.mtimeMs,
      });
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async localPath(key: string): Promise<string> {
    return this.#path(key);
  }

  #path(key: string): string {
    if (key.split("/").includes("..")) throw new Error(`invalid object key ${key}`);
    return join(this.#root, key);
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
