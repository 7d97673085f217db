// The catalog pages: datasets grouped by layer with the lineage graph, and one dataset's schema, files and snapshots.
import { useMemo } from "preact/hooks";
import { api, ApiError } from "./api.js";
import { EChart } from "./chart.js";
import type { ChartClick } from "./chart.js";
import { fmtBytes, fmtInt, fmtTime } from "./format.js";
import { buildLineage, LAYER_ORDER, lineageHeight, lineageOption } from "./lineage.js";
import { href, navigate } from "./router.js";
import { sqlName } from "./streams.js";
import type { Catalog, Cell, DatasetDetail, DatasetSummary, Plan } from "./types.js";
import {
  Crumb,
  ErrorBox,
  Facts,
  hasBatch,
  Loading,
  Page,
  Section,
  TableHead,
  useAsync,
  useSession,
} from "./ui.js";
import type { Session } from "./types.js";

/** The batch plan, or null where this process runs no batch layer (its endpoints are 404 there). */
export async function loadPlan(session: Session, signal: AbortSignal): Promise<Plan | null> {
  if (!hasBatch(session)) return null;
  try {
    return await api<Plan>("/v1/batch/plan", { signal });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** A dataset name in SQL: `raw.flights`, quoting the part after the layer when needed. */
function sqlDataset(name: string): string {
  const dot = name.indexOf(".");
  return dot < 0 ? sqlName(name) : `${name.slice(0, dot)}.${sqlName(name.slice(dot + 1))}`;
}

function timeRange(d: { min_event_time: string | null; max_event_time: string | null }): string {
  if (d.min_event_time === null && d.max_event_time === null) return "—";
  return `${fmtTime(d.min_event_time)} → ${fmtTime(d.max_event_time)}`;
}

/** Opens the page of a clicked graph node. */
function openNode(click: ChartClick): void {
  if (click.dataType !== "node") return;
  const id = (click.data as { id?: unknown } | undefined)?.id;
  if (typeof id !== "string") return;
  navigate(
    id.startsWith("stream:")
      ? href("streams", id.slice("stream:".length))
      : id.startsWith("view.")
        ? href("views", id.slice("view.".length))
        : href("catalog", id),
  );
}

function LayerTable(props: { layer: string; datasets: DatasetSummary[] }) {
  return (
    <div class="table-wrap">
      <table class="data">
        <caption>
          {props.layer} <span class="muted">({props.datasets.length})</span>
        </caption>
        <TableHead
          columns={["Dataset", "Kind", "Description", "#Rows", "#Files", "#Size", "Event time"]}
        />
        <tbody>
          {props.datasets.map((d) => (
            <tr key={d.name}>
              <td>
                <a href={href("catalog", d.name)}>{d.name}</a>
              </td>
              <td>{d.kind}</td>
              <td class="desc">{d.description ?? ""}</td>
              <td class="num">{fmtInt(d.rows)}</td>
              <td class="num">{fmtInt(d.files)}</td>
              <td class="num">{fmtBytes(d.bytes)}</td>
              <td class="nowrap">{timeRange(d)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `#/catalog`: every dataset the key may read, by layer, and how they feed each other. */
export function CatalogPage() {
  const session = useSession();
  const data = useAsync(async (signal) => {
    const [catalog, plan] = await Promise.all([
      api<Catalog>("/v1/catalog", { signal }),
      loadPlan(session, signal).catch((error: unknown) => {
        if (signal.aborted) throw error;
        return error instanceof Error ? error : new Error(String(error));
      }),
    ]);
    return { catalog, plan };
  });
  const catalog = data.data?.catalog;
  const planOrError = data.data?.plan;
  const plan = planOrError instanceof Error ? null : (planOrError ?? null);

  const groups = useMemo(() => {
    const byLayer = new Map<string, DatasetSummary[]>();
    for (const d of catalog?.datasets ?? []) {
      const known = LAYER_ORDER.includes(d.layer) && d.layer !== "stream";
      const layer = known ? d.layer : "other";
      byLayer.set(layer, [...(byLayer.get(layer) ?? []), d]);
    }
    return [...LAYER_ORDER.filter((l) => l !== "stream"), "other"]
      .filter((l) => byLayer.has(l))
      .map((l) => ({
        layer: l,
        datasets: (byLayer.get(l) ?? []).sort((a, b) => a.name.localeCompare(b.name)),
      }));
  }, [catalog]);

  const lineage = useMemo(
    () =>
      catalog === undefined
        ? null
        : buildLineage({
            streams: session.pipeline.streams ?? [],
            datasets: catalog.datasets ?? [],
            plan,
          }),
    [catalog, plan],
  );
  const option = useMemo(() => (lineage === null ? null : lineageOption(lineage)), [lineage]);

  return (
    <Page
      name="catalog"
      title="Catalog"
      ready={data.settled}
      actions={
        catalog !== undefined && <span class="muted">snapshot {fmtInt(catalog.snapshot)}</span>
      }
    >
      <ErrorBox error={data.error} />
      {catalog === undefined ? (
        data.error === null && <Loading what="the catalog" />
      ) : (
        <>
          <Section title="Lineage" id="lineage">
            {planOrError instanceof Error && <ErrorBox error={planOrError} context="batch plan" />}
            {lineage !== null && option !== null && lineage.nodes.length > 0 ? (
              <>
                <EChart
                  option={option}
                  height={lineageHeight(lineage)}
                  label={`Lineage graph of ${lineage.nodes.length} datasets; the tables below link to each`}
                  onClick={openNode}
                />
                <p class="muted small">
                  Streams → raw and dead letters →{" "}
                  {(plan?.layers ?? ["t1", "t2", "mart"]).join(" → ")}; each lambda view merges its
                  batch states (view_state) with the speed layer reading the stream. Click a node to
                  open it.
                </p>
              </>
            ) : (
              <p class="muted">Nothing to draw yet.</p>
            )}
          </Section>
          <Section title="Datasets" id="datasets">
            {groups.length === 0 ? (
              <p class="muted">No datasets yet, or none this key may read.</p>
            ) : (
              groups.map((g) => <LayerTable key={g.layer} layer={g.layer} datasets={g.datasets} />)
            )}
          </Section>
        </>
      )}
    </Page>
  );
}

function partitionText(partition: Record<string, Cell> | null | undefined): string {
  const entries = Object.entries(partition ?? {});
  return entries.length === 0 ? "—" : entries.map(([k, v]) => `${k}=${String(v)}`).join(", ");
}

function summaryText(summary: Cell): string {
  if (summary === null || summary === undefined) return "";
  if (typeof summary === "object" && !Array.isArray(summary)) {
    return Object.entries(summary)
      .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
      .join(", ");
  }
  return typeof summary === "string" ? summary : JSON.stringify(summary);
}

const MAX_LISTED = 200;

/** `#/catalog/<layer.name>`: one dataset's schema and history. */
export function DatasetPage(props: { name: string }) {
  const { name } = props;
  const data = useAsync((signal) =>
    api<DatasetDetail>(`/v1/console/datasets/${encodeURIComponent(name)}`, { signal }),
  );
  const detail = data.data;
  const d = detail?.dataset;
  const versions = [...(detail?.schema_versions ?? [])].sort((a, b) => b.version - a.version);
  const files = detail?.files ?? [];
  const snapshots = [...(detail?.snapshots ?? [])].sort((a, b) => b.id - a.id);

  return (
    <Page
      name="dataset"
      title={<Crumb page="catalog" label="Catalog" name={name} />}
      ready={data.settled}
      actions={
        <a
          class="button"
          href={href("sql", null, { q: `SELECT * FROM ${sqlDataset(name)} LIMIT 100` })}
        >
          Query in SQL
        </a>
      }
    >
      <ErrorBox error={data.error} />
      {detail === undefined || d === undefined ? (
        data.error === null && <Loading what={name} />
      ) : (
        <>
          <Section title="About" id="about">
            {d.description !== null && d.description !== "" && <p>{d.description}</p>}
            <Facts
              items={[
                ["Layer", d.layer],
                ["Kind", d.kind],
                ["Owner", detail.owner ?? "—"],
                ["Tags", (detail.tags ?? []).length > 0 ? detail.tags.join(", ") : "—"],
                ["Rows", fmtInt(d.rows)],
                ["Files", fmtInt(d.files)],
                ["Size", fmtBytes(d.bytes)],
                ["Event time", timeRange(d)],
                ["Partitioned by", (d.partition_columns ?? []).join(", ") || "—"],
                ["Schema version", d.schema_version === null ? "—" : String(d.schema_version)],
              ]}
            />
          </Section>
          <Section title="Schema" id="schema">
            <div class="table-wrap">
              <table class="data">
                <TableHead columns={["Column", "Type", "Description"]} />
                <tbody>
                  {(d.columns ?? []).map((c) => (
                    <tr key={c.name}>
                      <td>
                        <code>{c.name}</code>
                      </td>
                      <td>{c.type}</td>
                      <td>{c.description ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Section>
          <Section title="Schema versions" id="versions">
            {versions.length === 0 ? (
              <p class="muted">No schema versions recorded.</p>
            ) : (
              <div class="table-wrap">
                <table class="data">
                  <TableHead columns={["#Version", "Created", "Changes"]} />
                  <tbody>
                    {versions.map((v, i) => {
                      const previous = versions[i + 1];
                      const names = new Set((v.columns ?? []).map((c) => c.name));
                      const before = new Set((previous?.columns ?? []).map((c) => c.name));
                      const added = [...names].filter((n) => !before.has(n));
                      const removed = [...before].filter((n) => !names.has(n));
                      return (
                        <tr key={v.version}>
                          <td class="num">{v.version}</td>
                          <td>{fmtTime(v.created_at)}</td>
                          <td>
                            {previous === undefined
                              ? `${names.size} columns`
                              : [
                                  added.length > 0 ? `added ${added.join(", ")}` : "",
                                  removed.length > 0 ? `removed ${removed.join(", ")}` : "",
                                ]
                                  .filter((t) => t !== "")
                                  .join("; ") || "types changed"}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
          <Section title={`Files (${fmtInt(files.length)})`} id="files">
            {files.length === 0 ? (
              <p class="muted">No live files.</p>
            ) : (
              <div class="table-wrap">
                <table class="data">
                  {files.length > MAX_LISTED && <caption>The first {MAX_LISTED} files</caption>}
                  <TableHead
                    columns={["Partition", "Path", "#Rows", "#Size", "Event time", "#Added in"]}
                  />
                  <tbody>
                    {files.slice(0, MAX_LISTED).map((f) => (
                      <tr key={f.path}>
                        <td class="nowrap">{partitionText(f.partition)}</td>
                        <td>
                          <code class="path">{f.path}</code>
                        </td>
                        <td class="num">{fmtInt(f.rows)}</td>
                        <td class="num">{fmtBytes(f.bytes)}</td>
                        <td class="nowrap">
                          {timeRange({ min_event_time: f.min_time, max_event_time: f.max_time })}
                        </td>
                        <td class="num">{f.added_in === null ? "—" : `#${f.added_in}`}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
          <Section title="Snapshots" id="snapshots">
            {snapshots.length === 0 ? (
              <p class="muted">No snapshots.</p>
            ) : (
              <div class="table-wrap">
                <table class="data">
                  <TableHead
                    columns={[
                      "#Snapshot",
                      "Committed",
                      "Summary",
                      "#Files added",
                      "#Files removed",
                    ]}
                  />
                  <tbody>
                    {snapshots.slice(0, MAX_LISTED).map((s) => (
                      <tr key={s.id}>
                        <td class="num">#{s.id}</td>
                        <td>{fmtTime(s.committed_at)}</td>
                        <td>{summaryText(s.summary)}</td>
                        <td class="num">{fmtInt(s.files_added)}</td>
                        <td class="num">{fmtInt(s.files_removed)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
        </>
      )}
    </Page>
  );
}
