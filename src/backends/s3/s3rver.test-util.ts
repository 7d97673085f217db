// Test helper of the S3 backend: runs s3rver (an S3-compatible test server) in a child process.
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** A running s3rver with one empty bucket. */
export interface TestS3 {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  /** s3rver's fixed keys: it checks signatures against them. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** `backends.lake` of a project on this server, keys under `prefix`. */
  lakeConfig(prefix: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

const CHILD = fileURLToPath(new URL("./s3rver-child.mjs", import.meta.url));

/** Seconds to wait for the child to listen before the start fails. */
const START_TIMEOUT_S = 20;

/**
 * Starts s3rver on a free port of 127.0.0.1 over a new temporary folder, with the bucket created.
 * Rejects (so tests fail, not skip) when it cannot start.
 * @example const s3 = await startS3rver(); try { ... } finally { await s3.stop(); }
 */
export async function startS3rver(bucket = "trb-test"): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), "trb-s3rver-"));
  const child = fork(CHILD, [dir, bucket], {
    // Not the test's own flags (tsx, --test); and s3rver's ListObjectsV2 continuation tokens use a
    // cipher Node 17+ only offers with the legacy provider, so paging fails without it.
    execArgv: [],
    env: { ...process.env, NODE_OPTIONS: "--openssl-legacy-provider" },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const stopChild = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      // Closing the IPC channel ends the child; a kill backs that up if it hangs.
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`s3rver did not start in ${START_TIMEOUT_S} s`)),
        START_TIMEOUT_S * 1000,
      );
      child.once("message", (m: { port: number }) => {
        clearTimeout(timer);
        resolve(m.port);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited with code ${code} before listening`));
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  } catch (e) {
    await stopChild();
    throw new Error(`cannot start s3rver: ${(e as Error).message}\n${stderr}`, { cause: e });
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const region = "us-east-1";
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  return {
    endpoint,
    bucket,
    region,
    credentials,
    lakeConfig: (prefix, extra = {}) => ({
      kind: "s3",
      bucket,
      prefix,
      region,
      endpoint,
      force_path_style: true,
      access_key_id: credentials.accessKeyId,
      secret_access_key: credentials.secretAccessKey,
      ...extra,
    }),
    stop: stopChild,
  };
}
