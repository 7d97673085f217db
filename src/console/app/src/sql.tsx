// The SQL page: an editor with a dataset sidebar, paged results, CSV copy and an optional chart of the result.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, query } from "./api.js";
import { EChart } from "./chart.js";
import { cartesianOption, isTimeColumn, numericColumns } from "./chart-options.js";
import type { CartesianKind } from "./chart-options.js";
import { fmtInt, toCsv } from "./format.js";
import { LAYER_ORDER } from "./lineage.js";
import { sqlName } from "./streams.js";
import type { Catalog, QueryResult } from "./types.js";
import { ErrorBox, Page, ResultTable, useAsync, useSession } from "./ui.js";

const PAGE_SIZE = 50;

/** The editor's text, kept while the user visits other pages. */
let remembered: string | null = null;

function Sidebar(props: {
  catalog: Catalog | undefined;
  views: string[];
  onInsert: (text: string) => void;
}) {
  const [open, setOpen] = useState<Set<string>>(new Set());
  const datasets = useMemo(() => {
    const list = [...(props.catalog?.datasets ?? [])];
    const names = new Set(list.map((d) => d.name));
    for (const v of props.views) {
      if (!names.has(`view.${v}`)) {
        list.push({
          name: `view.${v}`,
          layer: "view",
          kind: "view",
          description: null,
          schema_version: null,
          columns: [],
          partition_columns: [],
          files: 0,
          rows: 0,
          bytes: 0,
          min_event_time: null,
          max_event_time: null,
        });
      }
    }
    const rank = (layer: string): number => {
      const i = LAYER_ORDER.indexOf(layer);
      return i < 0 ? LAYER_ORDER.length : i;
    };
    return list.sort((a, b) => rank(a.layer) - rank(b.layer) || a.name.localeCompare(b.name));
  }, [props.catalog, props.views]);

  const toggle = (name: string): void => {
    const next = new Set(open);
    if (next.has(name)) next.delete(name);
    else next.add(name);
    setOpen(next);
  };

  return (
    <aside class="sql-side" aria-label="Datasets">
      <h2>Datasets</h2>
      {datasets.length === 0 ? (
        <p class="muted small">No datasets yet.</p>
      ) : (
        <ul class="tree">
          {datasets.map((d) => {
            const isOpen = open.has(d.name);
            return (
              <li key={d.name}>
                <div class="tree-row">
                  <button
                    type="button"
                    class="icon"
                    aria-expanded={isOpen}
                    aria-label={`Columns of ${d.name}`}
                    disabled={(d.columns ?? []).length === 0}
                    onClick={() => toggle(d.name)}
                  >
                    {isOpen ? "▾" : "▸"}
                  </button>
                  <button
                    type="button"
                    class="link"
                    title={`Insert ${d.name}`}
                    onClick={() => props.onInsert(d.name)}
                  >
                    {d.name}
                  </button>
                </div>
                {isOpen && (
                  <ul>
                    {(d.columns ?? []).map((c) => (
                      <li key={c.name}>
                        <button
                          type="button"
                          class="link"
                          title={`Insert ${c.name}`}
                          onClick={() => props.onInsert(sqlName(c.name))}
                        >
                          {c.name}
                        </button>{" "}
                        <span class="muted small">{c.type}</span>
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </aside>
  );
}

function ResultChart(props: { result: QueryResult }) {
  const { columns, rows } = props.result;
  const numeric = useMemo(() => numericColumns(columns, rows), [columns, rows]);
  const defaultX =
    columns.find((c, i) => isTimeColumn(c, rows, i))?.name ??
    columns.find((c) => !numeric.includes(c.name))?.name ??
    columns[0]?.name ??
    "";
  const [x, setX] = useState(defaultX);
  const [ys, setYs] = useState<string[]>(() => numeric.filter((n) => n !== defaultX).slice(0, 1));
  const [kind, setKind] = useState<CartesianKind>("line");
  const built = useMemo(
    () => cartesianOption({ columns, rows, x, y: ys, series: null, kind }),
    [columns, rows, x, ys, kind],
  );
  return (
    <div class="result-chart">
      <div class="row controls">
        <label for="chart-x">X column</label>
        <select
          id="chart-x"
          aria-label="X column"
          value={x}
          onChange={(e) => setX(e.currentTarget.value)}
        >
          {columns.map((c) => (
            <option key={c.name} value={c.name}>
              {c.name}
            </option>
          ))}
        </select>
        <fieldset class="inline">
          <legend>Y columns</legend>
          {numeric.length === 0 && <span class="muted small">no numeric column</span>}
          {numeric.map((n) => (
            <span key={n} class="check">
              <input
                type="checkbox"
                id={`chart-y-${n}`}
                checked={ys.includes(n)}
                onChange={(e) =>
                  setYs(e.currentTarget.checked ? [...ys, n] : ys.filter((y) => y !== n))
                }
              />
              <label for={`chart-y-${n}`}>{n}</label>
            </span>
          ))}
        </fieldset>
        <label for="chart-type">Type</label>
        <select
          id="chart-type"
          aria-label="Chart type"
          value={kind}
          onChange={(e) => setKind(e.currentTarget.value as CartesianKind)}
        >
          <option value="line">line</option>
          <option value="bar">bar</option>
        </select>
      </div>
      <figure class="chart" data-chart="sql" data-points={String(built.points)}>
        {ys.length === 0 ? (
          <p class="muted">Pick at least one y column.</p>
        ) : (
          <EChart option={built.option} height={300} label={`${ys.join(", ")} by ${x}`} />
        )}
      </figure>
    </div>
  );
}

function Results(props: { result: QueryResult; elapsed: number }) {
  const { result } = props;
  const [page, setPage] = useState(0);
  const [copied, setCopied] = useState<string | null>(null);
  const [download, setDownload] = useState<string | null>(null);
  const [chart, setChart] = useState(false);
  const total = result.rows.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const first = page * PAGE_SIZE;
  const last = Math.min(total, first + PAGE_SIZE);

  useEffect(
    () => () => {
      if (download !== null) URL.revokeObjectURL(download);
    },
    [download],
  );

  const copy = async (): Promise<void> => {
    const csv = toCsv(result.columns, result.rows);
    try {
      if (navigator.clipboard === undefined) throw new Error("no clipboard");
      await navigator.clipboard.writeText(csv);
      setCopied("Copied");
    } catch {
      // No clipboard (an insecure origin, a denied permission): offer the file instead.
      setDownload(URL.createObjectURL(new Blob([csv], { type: "text/csv" })));
      setCopied("The clipboard is not available: download the CSV instead");
    }
  };

  return (
    <section class="panel results" aria-label="Results">
      <div class="row result-bar">
        <span role="status">
          {total === 0
            ? "No rows"
            : `rows ${fmtInt(first + 1)}–${fmtInt(last)} of ${fmtInt(total)}`}{" "}
          · {fmtInt(Math.round(props.elapsed))} ms
        </span>
        <span class="spacer" />
        <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
          Previous
        </button>
        <button type="button" disabled={page >= pages - 1} onClick={() => setPage(page + 1)}>
          Next
        </button>
        <button type="button" onClick={() => void copy()} disabled={result.columns.length === 0}>
          Copy CSV
        </button>
        {download !== null && (
          <a class="button" href={download} download="query.csv">
            Download CSV
          </a>
        )}
        <button type="button" aria-pressed={chart} onClick={() => setChart(!chart)}>
          Chart
        </button>
        {copied !== null && (
          <span class="muted small" role="status">
            {copied}
          </span>
        )}
      </div>
      <ResultTable
        columns={result.columns}
        rows={result.rows.slice(first, last)}
        offset={first}
        testId="sql-results"
      />
      {chart && <ResultChart result={result} />}
    </section>
  );
}

/** `#/sql`: read-only SQL over the lake (`POST /v1/query`). */
export function SqlPage(props: { initial: string | null }) {
  const session = useSession();
  const first = session.pipeline.streams?.[0];
  const [sql, setSql] = useState(
    () =>
      props.initial ??
      remembered ??
      (first !== undefined ? `SELECT * FROM raw.${sqlName(first)} LIMIT 100` : "SELECT 1 AS one"),
  );
  const [running, setRunning] = useState(false);
  const [outcome, setOutcome] = useState<{
    result: QueryResult;
    elapsed: number;
    run: number;
  } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const runs = useRef(0);
  const editor = useRef<HTMLTextAreaElement>(null);
  const catalog = useAsync((signal) => api<Catalog>("/v1/catalog", { signal }));

  useEffect(() => {
    remembered = sql;
  }, [sql]);

  const run = async (): Promise<void> => {
    if (running) return;
    const text = editor.current?.value ?? sql;
    setRunning(true);
    setError(null);
    const started = performance.now();
    try {
      const result = await query(text);
      runs.current += 1;
      setOutcome({ result, elapsed: performance.now() - started, run: runs.current });
    } catch (err) {
      setError(err);
      setOutcome(null);
    } finally {
      setRunning(false);
    }
  };

  const insert = (text: string): void => {
    const el = editor.current;
    if (el === null) {
      setSql(sql + text);
      return;
    }
    const start = el.selectionStart ?? el.value.length;
    const end = el.selectionEnd ?? start;
    const next = el.value.slice(0, start) + text + el.value.slice(end);
    setSql(next);
    el.value = next;
    el.focus();
    el.setSelectionRange(start + text.length, start + text.length);
  };

  return (
    <Page name="sql" title="SQL" ready={catalog.settled}>
      <div class="sql-layout">
        <Sidebar catalog={catalog.data} views={session.pipeline.views ?? []} onInsert={insert} />
        <div class="sql-main">
          <ErrorBox error={catalog.error} context="catalog" />
          <textarea
            id="sql"
            ref={editor}
            aria-label="SQL"
            class="editor"
            spellcheck={false}
            rows={8}
            value={sql}
            onInput={(e) => setSql(e.currentTarget.value)}
            onKeyDown={(e) => {
              if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
                e.preventDefault();
                void run();
              }
            }}
          />
          <div class="row">
            <button type="button" class="primary" onClick={() => void run()} disabled={running}>
              {running ? "Running…" : "Run"}
            </button>
            <span class="muted small">
              Ctrl+Enter (⌘+Enter) runs the query. Read-only: one SELECT.
            </span>
          </div>
          <ErrorBox error={error} />
          {outcome !== null && (
            <Results key={outcome.run} result={outcome.result} elapsed={outcome.elapsed} />
          )}
        </div>
      </div>
    </Page>
  );
}
