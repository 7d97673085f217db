// Checks user SQL before it runs: one SELECT, only catalog tables, no file/network/system functions.
import type { DuckDBConnection } from "@duckdb/node-api";
import { nearest } from "../config/index.js";
import { walkSqlTree as walk } from "./sql-tree.js";
import { TributaryError } from "../errors.js";

/** Table functions user SQL may call: they generate rows and touch nothing outside the query. */
const ALLOWED_TABLE_FUNCTIONS = new Set(["range", "generate_series", "unnest"]);

/** Scalar functions that would reveal the server's settings or environment. */
const FORBIDDEN_FUNCTIONS =
  /^(current_setting|getenv|read_blob|read_text|query|query_table|json_serialize_sql|json_deserialize_sql|json_execute_serialized_sql|sql_auto_complete|duckdb_.*|pragma_.*)$/i;

/** What the guard found in a statement. */
export interface GuardResult {
  /** Datasets the statement reads, as `layer.name`. */
  readonly datasets: readonly string[];
}

/**
 * Parses `sql` with DuckDB's own parser (json_serialize_sql, which only serializes SELECT
 * statements) and rejects anything but one SELECT over known datasets.
 * The engine's configuration is the second wall: external access off outside the lake, locked.
 */
export async function guardSql(
  conn: DuckDBConnection,
  sql: string,
  known: ReadonlySet<string>,
): Promise<GuardResult> {
  if (sql.trim().length === 0)
    throw new TributaryError("TRB_SERVE_SQL_INVALID", "The SQL is empty; send one SELECT.");
  const reader = await conn.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [sql]);
  const text = reader.getRowsJson()[0]?.[0];
  const parsed = JSON.parse(String(text)) as {
    error: boolean;
    error_type?: string;
    error_message?: string;
    statements?: { node: unknown }[];
  };
  if (parsed.error) {
    if (/only select/i.test(parsed.error_message ?? "")) {
      throw new TributaryError(
        "TRB_SERVE_SQL_FORBIDDEN",
        "Only SELECT is allowed: no DDL, DML, COPY, ATTACH, INSTALL, SET or PRAGMA.",
      );
    }
    throw new TributaryError(
      "TRB_SERVE_SQL_INVALID",
      `The SQL does not parse: ${parsed.error_message ?? "syntax error"}`,
    );
  }
  const statements = parsed.statements ?? [];
  if (statements.length !== 1) {
    throw new TributaryError(
      "TRB_SERVE_SQL_FORBIDDEN",
      `Send exactly one statement (got ${statements.length}).`,
    );
  }
  const tables: { schema: string; table: string; catalog: string; ctes: ReadonlySet<string> }[] =
    [];
  walk(statements[0]!.node, (node, ctes) => {
    if (node.type === "BASE_TABLE") {
      tables.push({
        schema: String(node.schema_name ?? ""),
        table: String(node.table_name ?? ""),
        catalog: String(node.catalog_name ?? ""),
        ctes,
      });
    } else if (node.type === "SHOW_REF" && (node.query === null || node.query === undefined)) {
      // SHOW TABLES / SHOW ALL TABLES list every table without the per-dataset read check;
      // DESCRIBE and SUMMARIZE carry their query, whose tables are checked like any other.
      throw new TributaryError(
        "TRB_SERVE_SQL_FORBIDDEN",
        "SHOW is not allowed; list datasets with GET /v1/catalog.",
      );
    } else if (node.type === "TABLE_FUNCTION") {
      const fn = node.function as { function_name?: string } | undefined;
      const name = fn?.function_name ?? "?";
      if (!ALLOWED_TABLE_FUNCTIONS.has(name.toLowerCase())) {
        throw new TributaryError(
          "TRB_SERVE_SQL_FORBIDDEN",
          `Table function ${name}() is not allowed; query catalog tables such as raw.<stream>.`,
        );
      }
    } else if (
      (node.class === "FUNCTION" || node.type === "FUNCTION") &&
      typeof node.function_name === "string"
    ) {
      if (FORBIDDEN_FUNCTIONS.test(node.function_name)) {
        throw new TributaryError(
          "TRB_SERVE_SQL_FORBIDDEN",
          `Function ${node.function_name}() is not allowed.`,
        );
      }
    }
  });
  const datasets = new Set<string>();
  for (const t of tables) {
    if (t.catalog !== "")
      throw new TributaryError(
        "TRB_SERVE_SQL_FORBIDDEN",
        `Catalog-qualified names (${t.catalog}.…) are not allowed.`,
      );
    if (t.schema === "" && t.ctes.has(t.table.toLowerCase())) continue;
    const name = `${t.schema}.${t.table}`.toLowerCase();
    if (!known.has(name)) {
      const shown = t.schema === "" ? t.table : name;
      const near = nearest(t.schema === "" ? `raw.${t.table}` : name, [...known]);
      throw new TributaryError(
        "TRB_SERVE_SQL_UNKNOWN_TABLE",
        `No table ${shown}${near ? `; did you mean ${near}?` : ""} Tables are named layer.name (raw.<stream>, dlq.<stream>).`,
      );
    }
    datasets.add(name);
  }
  return { datasets: [...datasets] };
}
