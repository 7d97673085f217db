import { DuckDBInstance } from '@duckdb/node-api';
import { writeFileSync, mkdirSync } from 'node:fs';
mkdirSync('/tmp/lt', {recursive: true});
writeFileSync('/tmp/lt/a.ndjson', [
 JSON.stringify({_event_id:'a',_received_at:'2026-01-01T00:00:00.000Z',_event_time:'2001-01-01T00:01:00.000Z',delay:3,origin:'LAS',_extra:{x:[1,2]}}),
 JSON.stringify({_event_id:'b',_received_at:'2026-01-01T00:00:00.000Z',_event_time:'2001-01-01T05:01:00.000Z',delay:null,origin:'LAS',_extra:null}),
].join('\n')+'\n');
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
for (const sql of [
 `COPY (SELECT *, strftime(_event_time, '%Y-%m-%d') AS dt, strftime(_event_time, '%H') AS hour FROM read_json('/tmp/lt/a.ndjson', format='newline_delimited', columns={_event_id:'VARCHAR',_received_at:'TIMESTAMP',_event_time:'TIMESTAMP',delay:'BIGINT',origin:'VARCHAR',_extra:'JSON'})) TO '/tmp/lt/out' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt, hour), FILENAME_PATTERN 'part-{uuid}', RETURN_FILES true, OVERWRITE_OR_IGNORE)`,
 `SELECT * FROM read_parquet('/tmp/lt/out/**/*.parquet', hive_partitioning=true)`,
 `DESCRIBE SELECT * FROM read_parquet('/tmp/lt/out/**/*.parquet', hive_partitioning=true)`,
]) { try { const r = await c.runAndReadAll(sql); console.log(r.columnNames(), JSON.stringify(r.getRowsJson()).slice(0,800)); } catch(e) { console.log('ERR', e.message.slice(0,300)); } }
