// The streams pages: the list of streams, and one stream's schema, recent events and dead letters (with replay).
import { useState } from "preact/hooks";
import { api, query } from "./api.js";
import { fmtInt, fmtNumber, fmtTime } from "./format.js";
import { href } from "./router.js";
import type { Catalog, Overview, QueryResult, ReplayResult, StreamDetail } from "./types.js";
import {
  CellText,
  Crumb,
  ErrorBox,
  Facts,
  Loading,
  Page,
  ResultTable,
  Section,
  StatusBadge,
  TableHead,
  useAsync,
  useSession,
} from "./ui.js";

/** `name` as a SQL identifier: bare when it is a plain word, else double-quoted. */
export function sqlName(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** `#/streams`: every declared stream with its rate, log end and dead letters. */
export function StreamsPage() {
  const session = useSession();
  const overview = useAsync((signal) => api<Overview>("/v1/console/overview", { signal }));
  const byName = new Map((overview.data?.streams ?? []).map((s) => [s.name, s]));
  const names = session.pipeline.streams ?? [];
  return (
    <Page name="streams" title="Streams" ready={overview.settled}>
      <ErrorBox error={overview.error} />
      {names.length === 0 ? (
        <p class="muted">This pipeline declares no streams.</p>
      ) : (
        <div class="table-wrap">
          <table class="data">
            <TableHead columns={["Stream", "#Events/s", "#End of log", "#Dead letters", "Data"]} />
            <tbody>
              {names.map((name) => {
                const s = byName.get(name);
                return (
                  <tr key={name}>
                    <td>
                      <a href={href("streams", name)}>{name}</a>
                    </td>
                    <td class="num">
                      {s?.rate === null || s === undefined
                        ? "—"
                        : fmtNumber(Math.round(s.rate * 10) / 10)}
                    </td>
                    <td class="num">{fmtInt(s?.end ?? null)}</td>
                    <td class="num">{fmtInt(s?.dead_letters ?? null)}</td>
                    <td>
                      <a href={href("catalog", `raw.${name}`)}>raw.{name}</a> ·{" "}
                      <a href={href("catalog", `dlq.${name}`)}>dlq.{name}</a>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

/** A query answer or why there is none. */
interface Listed {
  result: QueryResult | null;
  error: unknown;
  /** The dataset has no files yet (or the key may not read it): no query was run. */
  absent: boolean;
}

async function listed(sql: string | null, signal: AbortSignal): Promise<Listed> {
  if (sql === null) return { result: null, error: null, absent: true };
  try {
    return { result: await query(sql, signal), error: null, absent: false };
  } catch (error) {
    if (signal.aborted) throw error;
    return { result: null, error, absent: false };
  }
}

async function loadLists(
  name: string,
  signal: AbortSignal,
): Promise<{ events: Listed; dead: Listed }> {
  const catalog = await api<Catalog>("/v1/catalog", { signal });
  const names = new Set((catalog.datasets ?? []).map((d) => d.name));
  const raw = `raw.${sqlName(name)}`;
  const dlq = `dlq.${sqlName(name)}`;
  const hasRaw = names.has(`raw.${name}`);
  const replayed = hasRaw ? `d._event_id IN (SELECT _event_id FROM ${raw})` : "false";
  const [events, dead] = await Promise.all([
    listed(hasRaw ? `SELECT * FROM ${raw} ORDER BY _received_at DESC LIMIT 50` : null, signal),
    listed(
      names.has(`dlq.${name}`)
        ? `SELECT d._event_id, d._received_at, d._reason, d._raw, ${replayed} AS replayed FROM ${dlq} d ORDER BY d._received_at DESC LIMIT 200`
        : null,
      signal,
    ),
  ]);
  return { events, dead };
}

function Schema(props: { stream: StreamDetail }) {
  const s = props.stream;
  return (
    <>
      {s.description !== null && s.description !== "" && <p>{s.description}</p>}
      <Facts
        items={[
          ["Format", s.format],
          ["Id field", s.id_field ?? "generated"],
          ["Time field", s.time_field ?? "received time"],
          ["Partition key", s.partition_key ?? "—"],
        ]}
      />
      {(s.fields ?? []).length === 0 ? (
        <p class="muted">No declared fields: every event is kept whole in `_extra`.</p>
      ) : (
        <div class="table-wrap">
          <table class="data">
            <TableHead columns={["Field", "Type", "Required", "Description"]} />
            <tbody>
              {s.fields.map((f) => (
                <tr key={f.name}>
                  <td>
                    <code>{f.name}</code>
                  </td>
                  <td>{f.type}</td>
                  <td>{f.required ? "required" : "optional"}</td>
                  <td>{f.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function ReplaySummary(props: { result: ReplayResult }) {
  const r = props.result;
  const invalid = r.still_invalid ?? [];
  return (
    <div class="notice" role="status">
      <p>
        Replay: {fmtInt(r.considered)} considered, {fmtInt(r.stored)} stored, {fmtInt(r.duplicate)}{" "}
        duplicate, {fmtInt(r.already_landed)} already landed, {fmtInt(invalid.length)} still
        invalid.
      </p>
      {invalid.length > 0 && (
        <ul>
          {invalid.slice(0, 20).map((i) => (
            <li key={i.id}>
              <code>{i.id}</code>: {i.reason}
            </li>
          ))}
          {invalid.length > 20 && <li>and {invalid.length - 20} more</li>}
        </ul>
      )}
    </div>
  );
}

function DeadLetters(props: {
  name: string;
  dead: Listed;
  admin: boolean;
  onReplayed: () => void;
}) {
  const { dead, admin, name } = props;
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ReplayResult | null>(null);
  const [error, setError] = useState<unknown>(null);

  const replay = async (body: { ids: string[] } | { all: true }): Promise<void> => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const answer = await api<ReplayResult>(
        `/v1/streams/${encodeURIComponent(name)}/dead-letters/replay`,
        {
          method: "POST",
          body,
        },
      );
      setResult(answer);
      setSelected(new Set());
      // Replayed events land at the next flush: flush now so the lists show them.
      await api("/v1/flush", { method: "POST", body: {} });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      props.onReplayed();
    }
  };

  const actions = admin ? (
    <>
      <button
        type="button"
        disabled={busy || selected.size === 0}
        onClick={() => void replay({ ids: [...selected] })}
      >
        Replay selected{selected.size > 0 ? ` (${selected.size})` : ""}
      </button>
      <button type="button" disabled={busy} onClick={() => void replay({ all: true })}>
        Replay all
      </button>
    </>
  ) : undefined;

  let body;
  if (dead.absent) body = <p class="muted">No dead letters have landed for this stream.</p>;
  else if (dead.error !== null) body = <ErrorBox error={dead.error} />;
  else if (dead.result === null || dead.result.rows.length === 0)
    body = <p class="muted">No dead letters.</p>;
  else {
    const rows = dead.result.rows;
    const ids = rows.map((r) => String(r[0]));
    const allSelected = ids.length > 0 && ids.every((id) => selected.has(id));
    const toggle = (id: string, on: boolean): void => {
      const next = new Set(selected);
      if (on) next.add(id);
      else next.delete(id);
      setSelected(next);
    };
    body = (
      <div class="table-wrap">
        <table class="data">
          <thead>
            <tr>
              {admin && (
                <th scope="col" class="check">
                  <input
                    type="checkbox"
                    aria-label="Select every dead letter shown"
                    checked={allSelected}
                    onChange={(e) =>
                      setSelected(e.currentTarget.checked ? new Set(ids) : new Set())
                    }
                  />
                </th>
              )}
              <th scope="col">Event id</th>
              <th scope="col">Received</th>
              <th scope="col">Reason</th>
              <th scope="col">Raw</th>
              <th scope="col">Replayed</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => {
              const id = ids[i] ?? "";
              const replayed = r[4] === true || r[4] === "true";
              return (
                <tr key={`${id}-${i}`}>
                  {admin && (
                    <td class="check">
                      <input
                        type="checkbox"
                        aria-label={`Select dead letter ${id}`}
                        checked={selected.has(id)}
                        onChange={(e) => toggle(id, e.currentTarget.checked)}
                      />
                    </td>
                  )}
                  <td>
                    <code>{id}</code>
                  </td>
                  <td>{fmtTime(r[1])}</td>
                  <td>{String(r[2] ?? "")}</td>
                  <td>
                    <code class="raw">
                      <CellText value={r[3]} max={160} />
                    </code>
                  </td>
                  <td>
                    {replayed ? (
                      <StatusBadge status="ok" label="replayed" />
                    ) : (
                      <StatusBadge status="missing" label="not yet" />
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    );
  }

  return (
    <Section title="Dead letters" id="dead-letters" actions={actions}>
      {result !== null && <ReplaySummary result={result} />}
      <ErrorBox error={error} />
      {body}
    </Section>
  );
}

/** `#/streams/<name>`: the stream's schema, its newest events and its dead letters. */
export function StreamPage(props: { name: string }) {
  const { name } = props;
  const session = useSession();
  const schema = useAsync((signal) =>
    api<StreamDetail>(`/v1/console/streams/${encodeURIComponent(name)}`, { signal }),
  );
  const lists = useAsync((signal) => loadLists(name, signal));
  const events = lists.data?.events;

  return (
    <Page
      name="streams"
      title={<Crumb page="streams" label="Streams" name={name} />}
      ready={schema.settled && lists.settled}
      actions={
        <a
          class="button"
          href={href("sql", null, { q: `SELECT * FROM raw.${sqlName(name)} LIMIT 100` })}
        >
          Query in SQL
        </a>
      }
    >
      <Section title="Schema" id="schema">
        <ErrorBox error={schema.error} />
        {schema.data !== undefined ? (
          <Schema stream={schema.data} />
        ) : (
          schema.error === null && <Loading />
        )}
      </Section>
      <Section
        title="Recent events"
        id="events"
        actions={
          <button type="button" onClick={lists.reload} disabled={lists.loading}>
            Refresh
          </button>
        }
      >
        <ErrorBox error={lists.error} />
        {events === undefined ? (
          lists.error === null && <Loading />
        ) : events.absent ? (
          <p class="muted">No events have landed in raw.{name} yet.</p>
        ) : events.error !== null ? (
          <ErrorBox error={events.error} />
        ) : events.result === null || events.result.rows.length === 0 ? (
          <p class="muted">No events.</p>
        ) : (
          <ResultTable
            columns={events.result.columns}
            rows={events.result.rows}
            caption="The 50 newest events"
          />
        )}
      </Section>
      {lists.data !== undefined && (
        <DeadLetters
          name={name}
          dead={lists.data.dead}
          admin={session.can.admin}
          onReplayed={lists.reload}
        />
      )}
    </Page>
  );
}
