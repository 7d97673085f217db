// Dataset definitions of streams in the lake: raw.<stream> and dlq.<stream>, their columns and paths.
import type { FieldType, StreamPlan } from "../config/index.js";
import type { DatasetRef, SchemaColumn } from "../backends/contracts/index.js";

/** A dataset's definition as registered in the catalog. */
export interface DatasetDef {
  readonly ref: DatasetRef;
  readonly kind: string;
  readonly description: string;
  readonly columns: readonly SchemaColumn[];
  readonly partitionColumns: readonly string[];
}

/** Hive partition columns of stream datasets, in path order. */
export const EVENT_PARTITIONS = ["dt", "hour"] as const;

const SQL_TYPES: Record<FieldType, string> = {
  string: "VARCHAR",
  integer: "BIGINT",
  number: "DOUBLE",
  boolean: "BOOLEAN",
  timestamp: "TIMESTAMP",
  json: "JSON",
};

/** DuckDB SQL type of a declared field type. */
export function sqlType(type: FieldType): string {
  return SQL_TYPES[type];
}

const ENVELOPE: readonly SchemaColumn[] = [
  {
    name: "_event_id",
    type: "VARCHAR",
    description: "Event id (declared id field, messageId, or a generated UUIDv7)",
  },
  {
    name: "_received_at",
    type: "TIMESTAMP",
    description: "When Tributary received the event (UTC)",
  },
  {
    name: "_event_time",
    type: "TIMESTAMP",
    description: "Event time (UTC): the declared time field, else the received time",
  },
];

/** `raw.<stream>`: envelope, declared fields, `_extra` with every undeclared field. */
export function rawDataset(plan: StreamPlan): DatasetDef {
  return {
    ref: { layer: "raw", name: plan.name },
    kind: "stream",
    description: plan.description ?? `Events of stream ${plan.name}`,
    columns: [
      ...ENVELOPE,
      ...plan.fields.map((f) => ({
        name: f.name,
        type: sqlType(f.type),
        ...(f.description ? { description: f.description } : {}),
      })),
      {
        name: "_extra",
        type: "JSON",
        description: "Undeclared fields of the event, kept losslessly",
      },
    ],
    partitionColumns: EVENT_PARTITIONS,
  };
}

/** `dlq.<stream>`: events that failed validation, with the reason and original bytes. */
export function dlqDataset(plan: StreamPlan): DatasetDef {
  return {
    ref: { layer: "dlq", name: plan.name },
    kind: "dead_letter",
    description: `Dead letters of stream ${plan.name}: invalid events with the reason`,
    columns: [
      ...ENVELOPE,
      { name: "_reason", type: "VARCHAR", description: "Why the event was rejected" },
      { name: "_raw", type: "VARCHAR", description: "The event as received" },
    ],
    partitionColumns: EVENT_PARTITIONS,
  };
}

/** Object key prefix of a dataset's files. */
export function datasetPrefix(ref: DatasetRef): string {
  return `${ref.layer}/${ref.name}/`;
}
