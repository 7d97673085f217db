// The console's one way to call the API: bearer key, coded errors, 401 → sign-in, 429/503 → wait and retry.
import type { QueryResult } from "./types.js";

/** Where the signed-in key lives between visits. */
export const KEY_STORAGE = "tributary.key";

/** An API or network failure, with the API's error code (`TRB_…`) or a console one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** True for the error an aborted fetch or sleep throws: a page left, not a failure to show. */
export function isAbort(error: unknown): boolean {
  return (
    (error instanceof DOMException && error.name === "AbortError") ||
    (error instanceof Error && error.name === "AbortError")
  );
}

/** The stored key, or null (storage can be unavailable in private modes). */
export function storedKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/** Stores the key (null: forgets it). */
export function storeKey(key: string | null): void {
  try {
    if (key === null) localStorage.removeItem(KEY_STORAGE);
    else localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage refused (private mode, quota): the key then lasts for this page only.
  }
}

let unauthorized: () => void = () => undefined;

/** Sets what a 401 does (the app returns to the sign-in page). */
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

/** Options of one API call. */
export interface CallOptions {
  method?: "GET" | "POST";
  body?: unknown;
  signal?: AbortSignal;
  /** A key to try instead of the stored one (the sign-in form); a 401 then does not sign out. */
  key?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

const MAX_RETRIES = 3;

/** Resolves after `ms`, or rejects with an AbortError when the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException("aborted", "AbortError"));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Seconds of a `Retry-After` header, as milliseconds (1 s when absent, at most 30 s). */
function retryAfterMs(res: Response): number {
  const header = res.headers.get("Retry-After");
  const seconds = header === null ? NaN : Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 30) * 1000;
  const date = header === null ? NaN : Date.parse(header);
  if (Number.isFinite(date)) return Math.min(Math.max(date - Date.now(), 0), 30_000);
  return 1000;
}

/** Reads an error answer `{ error: { code, message } }` into an ApiError. */
async function errorOf(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return new ApiError(res.status, code, message);
}

/**
 * Sends one request with the bearer key and answers the Response once it is a 2xx. Retries 429
 * and 503 after their `Retry-After`; a 401 with the stored key signs out.
 */
export async function request(path: string, options: CallOptions = {}): Promise<Response> {
  const key = options.key ?? storedKey();
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(path, {
        method: options.method ?? "GET",
        headers,
        body,
        signal: options.signal,
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw new ApiError(0, "NETWORK", "The server could not be reached.", { cause: error });
    }
    if (res.ok) return res;
    if ((res.status === 429 || res.status === 503) && attempt < MAX_RETRIES) {
      await sleep(retryAfterMs(res), options.signal);
      continue;
    }
    const error = await errorOf(res);
    if (res.status === 401 && options.key === undefined) unauthorized();
    throw error;
  }
}

/** GETs started before the page asked for them (see {@link prefetch}), each used once. */
const prefetched = new Map<string, { at: number; response: Promise<Response> }>();
/** A prefetched answer older than this is not used: the page asks again. */
const PREFETCH_TTL_MS = 10_000;

/**
 * Starts a GET with the stored key now, so the answer is on its way while the session and the
 * page's code load (a page's first data otherwise waits for both). The next `api(path)` without
 * options of its own takes it; errors then surface there, as if it had been asked for then.
 */
export function prefetch(path: string): void {
  if (storedKey() === null || prefetched.has(path)) return;
  const response = request(path);
  response.catch(() => undefined); // Reported to the page that takes it.
  prefetched.set(path, { at: Date.now(), response });
}

/**
 * The JSON of a prefetched answer, without taking it (the page still can): for prefetches that
 * depend on another one's answer. Undefined when `path` was not prefetched.
 */
export function peekPrefetched<T>(path: string): Promise<T> | undefined {
  const held = prefetched.get(path);
  // Cloned as soon as it arrives, before the page that takes it reads the body.
  return held?.response.then((r) => r.clone().json() as Promise<T>);
}

function takePrefetched(path: string, options: CallOptions): Promise<Response> | undefined {
  const held = prefetched.get(path);
  if (held === undefined) return undefined;
  prefetched.delete(path);
  const plain = options.method === undefined && options.key === undefined && !options.body;
  return plain && Date.now() - held.at < PREFETCH_TTL_MS ? held.response : undefined;
}

/** Calls the API and answers its JSON body. */
export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  const early = takePrefetched(path, options);
  const res = await (early === undefined
    ? request(path, options)
    : early.catch((error: unknown) => {
        // A prefetch may have run before the app set what a 401 does: do it now.
        if (error instanceof ApiError && error.status === 401) unauthorized();
        throw error;
      }));
  try {
    return (await res.json()) as T;
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(
      res.status,
      "BAD_RESPONSE",
      "The server answered something that is not JSON.",
      {
        cause: error,
      },
    );
  }
}

/** Calls the API and also answers the HTTP status (202 versus 200 matter to batch runs). */
export async function apiWithStatus<T>(
  path: string,
  options: CallOptions = {},
): Promise<{ status: number; body: T }> {
  const res = await request(path, options);
  return { status: res.status, body: (await res.json()) as T };
}

/** A path with query parameters; empty and null values are left out. */
export function withQuery(path: string, params: Record<string, string | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text === "" ? path : `${path}?${text}`;
}

/** Runs one read-only SQL query. */
export function query(sql: string, signal?: AbortSignal): Promise<QueryResult> {
  return api<QueryResult>("/v1/query", { method: "POST", body: { sql }, signal });
}

/** The message to show for any error: `CODE: message`. */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: "CONSOLE_ERROR", message: error.message };
  return { code: "CONSOLE_ERROR", message: String(error) };
}
