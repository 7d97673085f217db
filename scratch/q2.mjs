import { DuckDBInstance } from '@duckdb/node-api';
const dir = process.cwd() + '/node_modules/vega-datasets/data/';
const db = await DuckDBInstance.create(':memory:', { autoload_known_extensions: 'false', autoinstall_known_extensions: 'false' , threads: '2', memory_limit: '1GB'});
const c = await db.connect();
for (const sql of [
 `SET allowed_directories = ['${dir}']`,
 `SET enable_external_access = false`,
 `SET temp_directory=''`,
 `CREATE SCHEMA raw`,
 `CREATE VIEW raw.flights AS SELECT * FROM read_parquet(['${dir}flights-3m.parquet'])`,
 `SELECT count(*) FROM raw.flights`,
 `SELECT count(*) FROM read_csv('/etc/passwd')`,
 `SELECT count(*) FROM read_csv('${dir}airports.csv')`,
 `SET lock_configuration = true`,
 `SET enable_external_access = true`,
 `SELECT count(*) FROM raw.flights`,
 `COPY (SELECT 1) TO '${dir}x.csv'`,
 `INSTALL httpfs`,
 `LOAD httpfs`,
]) { try { const r = await c.runAndReadAll(sql); console.log(sql.slice(0,80), JSON.stringify(r.getRowsJson()).slice(0,300)); } catch(e) { console.log('ERR', sql.slice(0,80), e.message.slice(0,200)); } }
