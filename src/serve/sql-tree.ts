// Walks DuckDB's parse trees (json_serialize_sql) with the CTE names in scope: used by the SQL guard and the batch compiler.

/**
 * Visits every node with the CTE names in scope there. A CTE is visible in later CTEs of its WITH
 * (and in its own body, when recursive) and in the query that declares it, never outside: else
 * `FROM (WITH "/etc/passwd" AS (…) …), "/etc/passwd"` would pass as a CTE and run as a file scan.
 */
export function walkSqlTree(
  value: unknown,
  visit: (node: Record<string, unknown>, ctes: ReadonlySet<string>) => void,
  ctes: ReadonlySet<string> = new Set(),
): void {
  if (Array.isArray(value)) {
    for (const v of value) walkSqlTree(v, visit, ctes);
  } else if (value !== null && typeof value === "object") {
    const node = value as Record<string, unknown>;
    visit(node, ctes);
    let scope = ctes;
    for (const entry of (node.cte_map as { map?: { key: string; value: unknown }[] } | undefined)
      ?.map ?? []) {
      scope = new Set([...scope, entry.key.toLowerCase()]);
      walkSqlTree(entry.value, visit, scope);
    }
    for (const [k, v] of Object.entries(node)) if (k !== "cte_map") walkSqlTree(v, visit, scope);
  }
}
