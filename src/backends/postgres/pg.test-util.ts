// Test helper of the PostgreSQL backends: the server under test and throwaway schemas.
import { randomBytes } from "node:crypto";
import { after } from "node:test";

/** The server under test; CI starts it on the default port. A failure to connect fails the test. */
export const PG_URL =
  process.env.TRIBUTARY_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * Schemas for one test file, named `<tag>_<random>_<n>`: `schemaFor(key)` gives the same schema
 * for the same key (a contract case's folder, or a test), and every one is dropped when the file
 * is done (registered with `after`).
 */
export function testSchemas(tag: string): { schemaFor(key: string): string } {
  const run = `${tag}_${randomBytes(4).toString("hex")}`;
  const schemas = new Map<string, string>();
  after(async () => {
    const { default: pg } = await import("pg");
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      for (const schema of schemas.values())
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await admin.end();
    }
  });
  return {
    schemaFor(key: string): string {
      let schema = schemas.get(key);
      if (schema === undefined) {
        schema = `${run}_${schemas.size + 1}`;
        schemas.set(key, schema);
      }
      return schema;
    },
  };
}
