// Shared pieces of every page: the session context, the page frame, errors, status badges, tables, data loading.
import { href } from "./router.js";
import { createContext } from "preact";
import type { ComponentChildren } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { describeError, isAbort } from "./api.js";
import { fmtCell } from "./format.js";
import type { Cell, Column, Session } from "./types.js";

/** The signed-in session; every page renders inside its provider. */
export const SessionContext = createContext<Session | null>(null);

/** The session of the signed-in key. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession outside the signed-in app");
  return session;
}

/**
 * True when this process runs the batch layer, so its endpoints answer (they are 404 elsewhere;
 * asking anyway would log a failed request in the browser console).
 */
export function hasBatch(session: Session): boolean {
  const roles = session.pipeline.roles ?? [];
  return roles.length === 0 || roles.includes("batch") || roles.includes("scheduler");
}

/** Props of {@link Page}. */
export interface PageProps {
  /** The `data-page` name tests and benchmarks look for. */
  name: string;
  title: ComponentChildren;
  /** Set once the page's first data has rendered: `data-ready="true"`. */
  ready: boolean;
  actions?: ComponentChildren;
  children?: ComponentChildren;
}

/** A page's `<main>`, its title and its actions. */
export function Page(props: PageProps) {
  return (
    <main
      id="main"
      tabIndex={-1}
      data-page={props.name}
      data-ready={props.ready ? "true" : undefined}
    >
      <header class="page-head">
        <h1>{props.title}</h1>
        {props.actions !== undefined && <div class="page-actions">{props.actions}</div>}
      </header>
      {props.children}
    </main>
  );
}

/** A titled block of a page. */
export function Section(props: {
  title: ComponentChildren;
  actions?: ComponentChildren;
  children?: ComponentChildren;
  id?: string;
  className?: string;
}) {
  return (
    <section
      class={`panel ${props.className ?? ""}`}
      id={props.id}
      aria-labelledby={props.id && `${props.id}-title`}
    >
      <header class="panel-head">
        <h2 id={props.id && `${props.id}-title`}>{props.title}</h2>
        {props.actions !== undefined && <div class="panel-actions">{props.actions}</div>}
      </header>
      {props.children}
    </section>
  );
}

/** An API error, inline: its code and message. */
export function ErrorBox(props: { error: unknown; context?: string }) {
  if (props.error === null || props.error === undefined) return null;
  const { code, message } = describeError(props.error);
  return (
    <div class="error" role="alert">
      <strong class="code">{code}</strong>{" "}
      {props.context !== undefined && <span>{props.context}: </span>}
      {message}
    </div>
  );
}

/** A loading line. */
export function Loading(props: { what?: string }) {
  return <p class="muted">Loading{props.what !== undefined ? ` ${props.what}` : ""}…</p>;
}

/** Known statuses with a colour; the text always says the status too. */
const STATUS_CLASS: Record<string, string> = {
  fresh: "ok",
  succeeded: "ok",
  ok: "ok",
  live: "ok",
  stale: "warn",
  warn: "warn",
  running: "info",
  interrupted: "warn",
  blocked: "warn",
  failed: "bad",
  error: "bad",
  missing: "none",
};

/** A status as coloured text: `fresh`, `failed`, `running`. */
export function StatusBadge(props: { status: string; label?: string }) {
  const tone = STATUS_CLASS[props.status] ?? "none";
  return <span class={`badge tone-${tone}`}>{props.label ?? props.status}</span>;
}

/** The state of {@link useAsync}. */
export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** The first load has finished, with data or with an error. */
  settled: boolean;
  reload: () => void;
}

/**
 * Loads data when the component mounts and on `reload()`, aborting on unmount. Pages remount per
 * route (they are keyed), so `deps` only list what the page itself can change.
 */
export function useAsync<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[] = [],
): AsyncState<T> {
  const [state, setState] = useState<Omit<AsyncState<T>, "reload">>({
    data: undefined,
    error: null,
    loading: true,
    settled: false,
  });
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    setState((s) => (s.loading ? s : { ...s, loading: true }));
    load(abort.signal).then(
      (data) => {
        if (!abort.signal.aborted) setState({ data, error: null, loading: false, settled: true });
      },
      (error: unknown) => {
        if (isAbort(error) || abort.signal.aborted) return;
        setState((s) => ({ ...s, error, loading: false, settled: true }));
      },
    );
    return () => abort.abort();
  }, [...deps, nonce]);
  return { ...state, reload: () => setNonce((n) => n + 1) };
}

/** A cell's text, with NULL dimmed and long values cut (the full text is in the title). */
export function CellText(props: { value: Cell | undefined; max?: number }) {
  const value = props.value;
  if (value === null || value === undefined) return <span class="null">NULL</span>;
  const text = fmtCell(value);
  const max = props.max ?? 200;
  if (text.length <= max) return <>{text}</>;
  return <span title={text}>{text.slice(0, max)}…</span>;
}

/** A query-shaped result as a table. */
export function ResultTable(props: {
  columns: Column[];
  rows: Cell[][];
  caption?: string;
  testId?: string;
  /** The row number of the first row (paging). */
  offset?: number;
}) {
  const numeric = props.columns.map((c) => /INT|DOUBLE|FLOAT|DECIMAL|REAL|NUMERIC/i.test(c.type));
  return (
    <div class="table-wrap">
      <table class="data" data-testid={props.testId}>
        {props.caption !== undefined && <caption>{props.caption}</caption>}
        <thead>
          <tr>
            {props.columns.map((c, i) => (
              <th
                scope="col"
                key={`${c.name}-${i}`}
                class={numeric[i] ? "num" : undefined}
                title={c.type}
              >
                {c.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row, r) => (
            <tr key={(props.offset ?? 0) + r}>
              {props.columns.map((_, i) => (
                <td
                  key={i}
                  class={
                    numeric[i] ? "num" : fmtCell(row[i] ?? null).length <= 40 ? "nowrap" : undefined
                  }
                >
                  <CellText value={row[i]} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A line of key/value facts. */
export function Facts(props: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {props.items.map(([term, value]) => (
        <div key={term}>
          <dt>{term}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/**
 * A table's head row: one column header per name, `scope="col"`; a name starting with `#` is a
 * number column (right-aligned, without the `#`).
 */
export function TableHead(props: { columns: readonly string[] }) {
  return (
    <thead>
      <tr>
        {props.columns.map((c) =>
          c.startsWith("#") ? (
            <th key={c} scope="col" class="num">
              {c.slice(1)}
            </th>
          ) : (
            <th key={c} scope="col">
              {c}
            </th>
          ),
        )}
      </tr>
    </thead>
  );
}

/** A page title under its section: "<Section link> / <name>". */
export function Crumb(props: { page: string; label: string; name: string }) {
  return (
    <>
      <a href={href(props.page)} class="crumb">
        {props.label}
      </a>{" "}
      / {props.name}
    </>
  );
}
