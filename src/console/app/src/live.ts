// Server-Sent Events over fetch() (EventSource cannot send the bearer header) and the live overview hook.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, isAbort, request, sleep } from "./api.js";
import type { Overview } from "./types.js";

/** One server-sent event. */
export interface ServerEvent {
  event: string;
  data: string;
}

/**
 * Splits an event stream into events: lines `event:` and `data:` (several `data:` lines join with
 * a newline), an event ends at a blank line, lines starting with `:` are comments.
 */
export class SseParser {
  #buffer = "";
  #event = "";
  #data: string[] = [];

  /** Feeds a chunk of text and answers the events it completed. */
  push(text: string): ServerEvent[] {
    this.#buffer += text;
    const events: ServerEvent[] = [];
    let newline = this.#buffer.indexOf("\n");
    while (newline >= 0) {
      let line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      this.#line(line, events);
      newline = this.#buffer.indexOf("\n");
    }
    return events;
  }

  #line(line: string, events: ServerEvent[]): void {
    if (line === "") {
      if (this.#data.length > 0) {
        events.push({ event: this.#event || "message", data: this.#data.join("\n") });
      }
      this.#event = "";
      this.#data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
  }
}

/** How the live connection is doing. */
export type LiveState = "connecting" | "live" | "reconnecting";

const RECONNECT_MS = 2000;

/**
 * Reads `path` as an event stream until the signal aborts, reconnecting 2 s after any failure or
 * end of stream. A 401 stops it (the API module has already signed out).
 */
export async function followEvents(
  path: string,
  signal: AbortSignal,
  onEvent: (event: ServerEvent) => void,
  onState: (state: LiveState) => void,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const res = await request(path, { signal, headers: { Accept: "text/event-stream" } });
      if (res.body === null) throw new Error("the event stream has no body");
      onState("live");
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(decoder.decode(value, { stream: true }))) onEvent(event);
      }
    } catch (error) {
      if (isAbort(error) || signal.aborted) return;
      if (error instanceof ApiError && error.status === 401) return;
    }
    onState("reconnecting");
    try {
      await sleep(RECONNECT_MS, signal);
    } catch {
      return;
    }
  }
}

/** What the live overview hook answers. */
export interface LiveOverview {
  overview: Overview | null;
  error: unknown;
  state: LiveState;
  /** When the last overview arrived (wall clock). */
  updatedAt: Date | null;
  /** Every overview received so far, counting the first. */
  updates: number;
  /** The recent `rate` samples of each stream, oldest first (at most `HISTORY` of them). */
  history: Map<string, number[]>;
}

/** The error an `error` event carries (`{ "error": { "code", "message" } }`). */
function liveError(data: string): ApiError {
  const body = JSON.parse(data) as { error?: { code?: string; message?: string } };
  return new ApiError(
    0,
    body.error?.code ?? "TRB_INTERNAL",
    body.error?.message ?? "The live overview failed.",
  );
}

/** Rate samples kept per stream for the sparklines (2 minutes at one event per 2 s). */
export const HISTORY = 60;

/**
 * The overview, first from `GET /v1/console/overview` and then from each `overview` event of
 * `GET /v1/console/live`, with a rolling history of each stream's ingest rate.
 */
export function useLiveOverview(): LiveOverview {
  const [live, setLive] = useState<LiveOverview>({
    overview: null,
    error: null,
    state: "connecting",
    updatedAt: null,
    updates: 0,
    history: new Map(),
  });
  const history = useRef(new Map<string, number[]>());

  useEffect(() => {
    const abort = new AbortController();
    const accept = (overview: Overview): void => {
      const next = new Map(history.current);
      for (const stream of overview.streams ?? []) {
        const samples = [...(next.get(stream.name) ?? []), stream.rate ?? 0];
        next.set(stream.name, samples.slice(-HISTORY));
      }
      history.current = next;
      setLive((prev) => ({
        ...prev,
        overview,
        error: null,
        updatedAt: new Date(),
        updates: prev.updates + 1,
        history: next,
      }));
    };
    const run = async (): Promise<void> => {
      try {
        accept(await api<Overview>("/v1/console/overview", { signal: abort.signal }));
      } catch (error) {
        if (isAbort(error)) return;
        setLive((prev) => ({ ...prev, error }));
      }
      await followEvents(
        "/v1/console/live",
        abort.signal,
        (event) => {
          try {
            if (event.event === "overview") accept(JSON.parse(event.data) as Overview);
            else if (event.event === "error")
              setLive((prev) => ({ ...prev, error: liveError(event.data) }));
          } catch {
            // A malformed event: the next one, 2 s later, replaces it.
          }
        },
        (state) => setLive((prev) => ({ ...prev, state })),
      );
    };
    void run().catch(() => undefined);
    return () => abort.abort();
  }, []);

  return live;
}
