// The batch page: the model graph coloured by partition status, the model × day grid, runs, and admin run controls.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError, apiWithStatus, isAbort, sleep } from "./api.js";
import { EChart } from "./chart.js";
import type { ChartClick } from "./chart.js";
import { fmtInt, fmtSpan, fmtTime } from "./format.js";
import { buildLineage, lineageHeight, lineageOption, STATUS_COLORS } from "./lineage.js";
import { href, navigate } from "./router.js";
import type {
  PartitionStatus,
  Partitions,
  Plan,
  Run,
  RunDetail,
  RunProgress,
  Runs,
  StartRunAnswer,
} from "./types.js";
import {
  ErrorBox,
  hasBatch,
  Loading,
  Page,
  Section,
  StatusBadge,
  TableHead,
  useAsync,
  useSession,
} from "./ui.js";

const STATUSES: PartitionStatus[] = ["fresh", "stale", "failed", "missing"];
const GRID_DAYS = 14;
const MAX_NOT_FRESH = 100;

type Partition = Partitions["partitions"][number];

/** What the page loads: the batch layer's state, or that this process runs none. */
type BatchData =
  { running: false } | { running: true; plan: Plan; partitions: Partitions; runs: Runs };

async function loadBatch(signal: AbortSignal): Promise<BatchData> {
  try {
    const [plan, partitions, runs] = await Promise.all([
      api<Plan>("/v1/batch/plan", { signal }),
      api<Partitions>("/v1/batch/partitions", { signal }),
      api<Runs>("/v1/batch/runs?limit=50", { signal }),
    ]);
    return { running: true, plan, partitions, runs };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { running: false };
    throw error;
  }
}

function NotRunning() {
  return (
    <Page name="batch" title="Batch" ready>
      <p class="notice" role="status">
        The batch layer is not running in this process.
      </p>
    </Page>
  );
}

/** `#/batch`: the batch layer's partitions and runs. */
export function BatchPage() {
  const session = useSession();
  return hasBatch(session) ? <BatchBody admin={session.can.admin} /> : <NotRunning />;
}

function daysText(days: string[]): string {
  const sorted = [...(days ?? [])].sort();
  if (sorted.length === 0) return "—";
  if (sorted.length <= 2) return sorted.join(", ");
  return `${sorted[0]} … ${sorted[sorted.length - 1]} (${sorted.length})`;
}

function StatusCell(props: { partition: Partition | undefined }) {
  const p = props.partition;
  if (p === undefined) return <td class="cell-status tone-empty">—</td>;
  return (
    <td class={`cell-status st-${p.status}`} title={p.reason ?? p.status}>
      {p.status}
    </td>
  );
}

function Legend(props: { counts: Partial<Record<PartitionStatus, number>> }) {
  return (
    <ul class="legend" aria-label="Status colours">
      {STATUSES.map((s) => (
        <li key={s}>
          <span
            class="swatch"
            aria-hidden="true"
            style={{ background: STATUS_COLORS[s][0], borderColor: STATUS_COLORS[s][1] }}
          />
          {s} <span class="muted">({fmtInt(props.counts[s] ?? 0)})</span>
        </li>
      ))}
    </ul>
  );
}

function ProgressLine(props: { runId: number | string; progress: RunProgress | null }) {
  const p = props.progress;
  const running = p === null ? [] : Array.isArray(p.running) ? p.running : [];
  return (
    <div class="progress-line" role="status">
      <span>
        Run #{props.runId}:{" "}
        {p === null
          ? "starting…"
          : `${fmtInt(p.done)} of ${fmtInt(p.total)} tasks done${p.failed > 0 ? `, ${p.failed} failed` : ""}`}
      </span>
      <progress
        value={p?.done ?? 0}
        max={Math.max(p?.total ?? 1, 1)}
        aria-label={`Progress of run ${props.runId}`}
      />
      {running.length > 0 && <span class="muted small">running {running.join(", ")}</span>}
    </div>
  );
}

function RunControls(props: {
  day: string | null;
  busy: boolean;
  onStart: (body: Record<string, unknown>) => void;
}) {
  const [open, setOpen] = useState(false);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [force, setForce] = useState(false);
  return (
    <div class="run-controls">
      <div class="row">
        <button type="button" disabled={props.busy} onClick={() => props.onStart({ mode: "run" })}>
          Run yesterday
        </button>
        <button
          type="button"
          disabled={props.busy || props.day === null}
          onClick={() => props.day !== null && props.onStart({ mode: "run", date: props.day })}
        >
          Run day{props.day !== null ? ` ${props.day}` : ""}
        </button>
        <button
          type="button"
          disabled={props.busy}
          onClick={() => props.onStart({ mode: "repair" })}
        >
          Repair
        </button>
        <button
          type="button"
          aria-expanded={open}
          aria-controls="backfill-form"
          onClick={() => setOpen(!open)}
        >
          Backfill…
        </button>
      </div>
      {open && (
        <form
          id="backfill-form"
          class="row backfill"
          onSubmit={(e) => {
            e.preventDefault();
            props.onStart({ mode: "backfill", from, to, ...(force ? { force: true } : {}) });
          }}
        >
          <label for="backfill-from">From</label>
          <input
            id="backfill-from"
            type="date"
            required
            value={from}
            onInput={(e) => setFrom(e.currentTarget.value)}
          />
          <label for="backfill-to">To</label>
          <input
            id="backfill-to"
            type="date"
            required
            value={to}
            onInput={(e) => setTo(e.currentTarget.value)}
          />
          <input
            id="backfill-force"
            type="checkbox"
            checked={force}
            onChange={(e) => setForce(e.currentTarget.checked)}
          />
          <label for="backfill-force">Rebuild fresh partitions too</label>
          <button type="submit" class="primary" disabled={props.busy}>
            Start backfill
          </button>
        </form>
      )}
    </div>
  );
}

function RunTasks(props: { detail: RunDetail }) {
  const { tasks, tests } = props.detail;
  const failedTests = (tests ?? []).filter((t) => !t.passed);
  return (
    <div class="run-detail">
      {props.detail.run.error !== null && (
        <p class="error-text">
          <strong>Error:</strong> {props.detail.run.error}
        </p>
      )}
      {(tasks ?? []).length === 0 ? (
        <p class="muted">No tasks recorded.</p>
      ) : (
        <table class="data">
          <caption>Tasks of run #{props.detail.run.id}</caption>
          <TableHead
            columns={[
              "Model",
              "Days",
              "Status",
              "#Attempts",
              "Started",
              "#ms",
              "#Rows in",
              "#Rows out",
              "Error",
            ]}
          />
          <tbody>
            {tasks.map((t, i) => (
              <tr key={`${t.model}-${i}`}>
                <td>
                  <a href={href("catalog", t.model)}>{t.model}</a>
                </td>
                <td class="nowrap">{daysText(t.days)}</td>
                <td>
                  <StatusBadge status={t.status} />
                </td>
                <td class="num">{fmtInt(t.attempts)}</td>
                <td class="nowrap">{fmtTime(t.started_at)}</td>
                <td class="num">{fmtInt(t.ms)}</td>
                <td class="num">{fmtInt(t.rows_in)}</td>
                <td class="num">{fmtInt(t.rows_out)}</td>
                <td class="desc">{t.error ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {failedTests.length > 0 && (
        <>
          <h4>Failed data tests</h4>
          <ul>
            {failedTests.map((t, i) => (
              <li key={i}>
                <code>{t.model}</code> {t.day}: {t.test} — {t.message ?? `${t.failures} failures`}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function RunHistory(props: { runs: Run[]; refresh: number }) {
  const [expanded, setExpanded] = useState<Run["id"] | null>(null);
  const detail = useAsync(
    (signal) =>
      expanded === null
        ? Promise.resolve(null)
        : api<RunDetail>(`/v1/batch/runs/${encodeURIComponent(String(expanded))}`, { signal }),
    [expanded, props.refresh],
  );
  const shown =
    detail.data !== null && detail.data !== undefined && detail.data.run.id === expanded
      ? detail.data
      : null;
  if (props.runs.length === 0) return <p class="muted">No runs yet.</p>;
  return (
    <div class="table-wrap">
      <table class="data">
        <TableHead
          columns={["Run", "Trigger", "Status", "Started", "Duration", "Days", "#Rows out"]}
        />
        <tbody>
          {props.runs.map((run) => {
            const open = expanded === run.id;
            const rowsOut =
              open && shown !== null
                ? shown.tasks.reduce((sum, t) => sum + (t.rows_out ?? 0), 0)
                : (run.rows_out ?? null);
            return [
              <tr key={run.id} class={open ? "open" : undefined}>
                <td>
                  <button
                    type="button"
                    class="link"
                    aria-expanded={open}
                    onClick={() => setExpanded(open ? null : run.id)}
                  >
                    #{run.id}
                  </button>
                </td>
                <td>{run.trigger}</td>
                <td>
                  <StatusBadge status={run.status} />
                </td>
                <td class="nowrap">{fmtTime(run.started_at)}</td>
                <td>
                  {run.finished_at === null ? "running" : fmtSpan(run.started_at, run.finished_at)}
                </td>
                <td class="nowrap">{daysText(run.days)}</td>
                <td class="num">{rowsOut === null ? "—" : fmtInt(rowsOut)}</td>
              </tr>,
              open && (
                <tr key={`${run.id}-detail`} class="detail">
                  <td colSpan={7}>
                    <ErrorBox error={detail.error} />
                    {shown === null ? (
                      detail.error === null && <Loading what="the tasks" />
                    ) : (
                      <RunTasks detail={shown} />
                    )}
                  </td>
                </tr>
              ),
            ];
          })}
        </tbody>
      </table>
    </div>
  );
}

function NotFresh(props: { partitions: Partition[] }) {
  const order: Record<string, number> = { failed: 0, stale: 1, missing: 2 };
  const list = props.partitions
    .filter((p) => p.status !== "fresh")
    .sort((a, b) => (order[a.status] ?? 3) - (order[b.status] ?? 3) || b.day.localeCompare(a.day));
  if (list.length === 0) return <p class="muted">Every partition is fresh.</p>;
  return (
    <div class="table-wrap">
      <table class="data">
        {list.length > MAX_NOT_FRESH && (
          <caption>
            The first {MAX_NOT_FRESH} of {fmtInt(list.length)}
          </caption>
        )}
        <TableHead columns={["Model", "Day", "Status", "Reason", "Built", "Run"]} />
        <tbody>
          {list.slice(0, MAX_NOT_FRESH).map((p) => (
            <tr key={`${p.model}|${p.day}`}>
              <td>
                <a href={href("catalog", p.model)}>{p.model}</a>
              </td>
              <td class="nowrap">{p.day}</td>
              <td>
                <StatusBadge status={p.status} />
              </td>
              <td class="desc">{p.reason ?? ""}</td>
              <td class="nowrap">{fmtTime(p.built_at)}</td>
              <td>{p.run_id === null ? "—" : `#${p.run_id}`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function openModel(click: ChartClick): void {
  const id = (click.data as { id?: unknown } | undefined)?.id;
  if (click.dataType === "node" && typeof id === "string") navigate(href("catalog", id));
}

function BatchBody(props: { admin: boolean }) {
  const data = useAsync(loadBatch);
  const [day, setDay] = useState<string | null>(null);
  const [tracking, setTracking] = useState<{ id: Run["id"]; progress: RunProgress | null } | null>(
    null,
  );
  const [message, setMessage] = useState<string | null>(null);
  const [startError, setStartError] = useState<unknown>(null);
  const [refresh, setRefresh] = useState(0);

  const state = data.data?.running === true ? data.data : null;
  const partitions = state?.partitions.partitions ?? [];
  const plan = state?.plan ?? null;

  const days = useMemo(
    () => [...new Set(partitions.map((p) => p.day).filter((d) => d !== "*"))].sort().reverse(),
    [partitions],
  );
  // Default: the newest day anything was built for (newer days are typically all missing).
  const builtDay = useMemo(
    () =>
      days.find((d) => partitions.some((p) => p.day === d && p.status !== "missing")) ??
      days[0] ??
      null,
    [days, partitions],
  );
  const selected = day !== null && days.includes(day) ? day : builtDay;
  const byKey = useMemo(
    () => new Map(partitions.map((p) => [`${p.model}|${p.day}`, p])),
    [partitions],
  );
  const partitionOf = (model: string, d: string | null): Partition | undefined =>
    (d === null ? undefined : byKey.get(`${model}|${d}`)) ?? byKey.get(`${model}|*`);

  const lineage = useMemo(
    () =>
      plan === null ? null : buildLineage({ streams: [], datasets: [], plan, modelsOnly: true }),
    [plan],
  );
  const option = useMemo(
    () =>
      lineage === null
        ? null
        : lineageOption(lineage, (id) => partitionOf(id, selected)?.status ?? "missing"),
    [lineage, selected, byKey],
  );
  const dayCounts = useMemo(() => {
    const counts: Partial<Record<PartitionStatus, number>> = {};
    for (const m of plan?.models ?? []) {
      const s = partitionOf(m.id, selected)?.status ?? "missing";
      counts[s] = (counts[s] ?? 0) + 1;
    }
    return counts;
  }, [plan, selected, byKey]);

  // Follow a run in progress: the one this page started, or one already running when it opened.
  const alreadyRunning = state?.runs.running ?? null;
  useEffect(() => {
    if (tracking === null && alreadyRunning !== null) {
      setTracking({ id: alreadyRunning.run_id, progress: alreadyRunning });
    }
  }, [alreadyRunning?.run_id]);

  const trackedId = tracking?.id ?? null;
  useEffect(() => {
    if (trackedId === null) return;
    const abort = new AbortController();
    const poll = async (): Promise<void> => {
      for (;;) {
        await sleep(1000, abort.signal);
        const detail = await api<RunDetail>(
          `/v1/batch/runs/${encodeURIComponent(String(trackedId))}`,
          {
            signal: abort.signal,
          },
        );
        if (detail.running === null || detail.run.status !== "running") {
          setTracking(null);
          setMessage(
            `Run #${detail.run.id} ${detail.run.status}${detail.run.error !== null ? `: ${detail.run.error}` : ""}.`,
          );
          setRefresh((n) => n + 1);
          data.reload();
          return;
        }
        setTracking({ id: trackedId, progress: detail.running });
      }
    };
    poll().catch((error: unknown) => {
      if (isAbort(error)) return;
      setStartError(error);
      setTracking(null);
    });
    return () => abort.abort();
  }, [trackedId]);

  const start = async (body: Record<string, unknown>): Promise<void> => {
    setMessage(null);
    setStartError(null);
    try {
      const answer = await apiWithStatus<StartRunAnswer>("/v1/batch/runs", {
        method: "POST",
        body,
      });
      const run = answer.body.run;
      if (run === null) {
        setMessage(answer.body.message ?? "Nothing to build: every partition is fresh.");
      } else if (answer.status === 202) {
        setTracking({ id: run.id, progress: answer.body.progress ?? null });
      } else {
        setMessage(
          `Run #${run.id} ${run.status ?? "finished"}${run.error ? `: ${run.error}` : ""}.`,
        );
        setRefresh((n) => n + 1);
        data.reload();
      }
    } catch (error) {
      setStartError(error);
    }
  };

  if (data.data?.running === false) return <NotRunning />;

  const gridDays = days.slice(0, GRID_DAYS).reverse();
  const hasFull = partitions.some((p) => p.day === "*");

  return (
    <Page
      name="batch"
      title="Batch"
      ready={data.settled}
      actions={
        <button type="button" onClick={data.reload} disabled={data.loading}>
          Refresh
        </button>
      }
    >
      <ErrorBox error={data.error} />
      {state === null ? (
        data.error === null && <Loading what="the batch layer" />
      ) : (
        <>
          {props.admin && (
            <Section title="Run" id="run">
              <RunControls
                day={selected}
                busy={tracking !== null}
                onStart={(body) => void start(body)}
              />
              {tracking !== null && (
                <ProgressLine runId={tracking.id} progress={tracking.progress} />
              )}
              {message !== null && (
                <p class="notice" role="status">
                  {message}
                </p>
              )}
              <ErrorBox error={startError} />
            </Section>
          )}
          {!props.admin && tracking !== null && (
            <ProgressLine runId={tracking.id} progress={tracking.progress} />
          )}
          <Section
            title="Models"
            id="models"
            actions={
              <>
                <label for="batch-day">Day</label>
                <select
                  id="batch-day"
                  aria-label="Day"
                  value={selected ?? ""}
                  disabled={days.length === 0}
                  onChange={(e) => setDay(e.currentTarget.value)}
                >
                  {days.length === 0 && <option value="">no days yet</option>}
                  {days.map((d) => (
                    <option key={d} value={d}>
                      {d}
                    </option>
                  ))}
                </select>
              </>
            }
          >
            <Legend counts={dayCounts} />
            {lineage !== null && option !== null && lineage.nodes.length > 0 ? (
              <EChart
                option={option}
                height={lineageHeight(lineage)}
                label={`Models coloured by their partition status on ${selected ?? "no day"}; the grid below lists the same`}
                onClick={openModel}
              />
            ) : (
              <p class="muted">The plan has no models.</p>
            )}
          </Section>
          <Section title={`Partitions, the last ${GRID_DAYS} days`} id="grid">
            {(plan?.models ?? []).length === 0 ? (
              <p class="muted">No models.</p>
            ) : (
              <div class="table-wrap">
                <table class="data grid">
                  <thead>
                    <tr>
                      <th scope="col">Model</th>
                      {hasFull && <th scope="col">Full refresh</th>}
                      {gridDays.map((d) => (
                        <th scope="col" key={d} class={d === selected ? "selected" : undefined}>
                          {d.slice(5)}
                        </th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {(plan?.models ?? []).map((m) => {
                      const full = byKey.get(`${m.id}|*`);
                      return (
                        <tr key={m.id}>
                          <th scope="row">
                            <a href={href("catalog", m.id)}>{m.id}</a>
                          </th>
                          {hasFull && <StatusCell partition={full} />}
                          {gridDays.map((d) => (
                            <StatusCell
                              key={d}
                              partition={full === undefined ? byKey.get(`${m.id}|${d}`) : undefined}
                            />
                          ))}
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
          <Section title="Runs" id="runs">
            <RunHistory runs={state.runs.runs ?? []} refresh={refresh} />
          </Section>
          <Section title="Not fresh" id="not-fresh">
            <NotFresh partitions={partitions} />
          </Section>
        </>
      )}
    </Page>
  );
}
