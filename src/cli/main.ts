// The `tributary` command: up, init, query, catalog, flush, batch.
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { isTributaryError } from "../errors.js";
import {
  runBatchBackfill,
  runBatchPartitions,
  runBatchPlan,
  runBatchRepair,
  runBatchRun,
  runBatchRuns,
} from "./batch.js";
import { runCatalog, runFlush, runInit, runQuery, runRoles, runUp } from "./commands.js";

/** Parses argv and runs a command; exits non-zero with one line saying what to fix. */
export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command()
    .name("tributary")
    .description("A portable Lambda-architecture data platform.")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command("up")
    .description("Run every stage of a pipeline in this process (embedded backends).")
    .argument("[project]", "project folder or tributary.yaml", ".")
    .option("-p, --port <port>", "HTTP port (default: server.port, or PORT)", int)
    .option("--speed <x>", "replay speed: seconds of event time per second", Number)
    .option("--no-replay", "do not start the pipeline's replays")
    .action(runUp);

  program
    .command("run")
    .description(
      "Run some roles of a pipeline in this process: collect, land, speed, batch, scheduler, serve.",
    )
    .argument("<roles...>", "one or more roles, e.g. `collect` or `batch scheduler`")
    .option("-d, --dir <project>", "project folder or tributary.yaml", ".")
    .option("-p, --port <port>", "HTTP port (default: server.port, or PORT)", int)
    .action((roles: string[], opts: { dir: string; port?: number }) => runRoles(roles, opts));

  program
    .command("init")
    .description("Scaffold a working project with a stream and fresh keys.")
    .argument("[folder]", "where to create it", ".")
    .action(runInit);

  program
    .command("query")
    .description("Run read-only SQL over the lake (opens the project's catalog directly).")
    .argument("<sql>", 'one SELECT, e.g. "SELECT count(*) FROM raw.flights"')
    .option("-d, --dir <project>", "project folder", ".")
    .option("--json", "print JSON instead of a table")
    .action(runQuery);

  program
    .command("catalog")
    .description("List datasets with schema, files, rows and time range.")
    .argument("[project]", "project folder", ".")
    .option("--json", "print JSON")
    .action(runCatalog);

  program
    .command("flush")
    .description("Ask a running server to land everything acknowledged so far (admin key).")
    .option("--url <url>", "server URL", process.env.TRIBUTARY_URL ?? "http://127.0.0.1:8080")
    .option("--key <secret>", "admin key (or TRIBUTARY_KEY)", process.env.TRIBUTARY_KEY)
    .action(runFlush);

  const batch = program
    .command("batch")
    .description("The batch layer: SQL models per day partition (see docs/reference/batch.md).");
  batch
    .command("plan")
    .description("Compile the models and print the plan: inputs, columns, tests, order.")
    .argument("[project]", "project folder", ".")
    .option("--json", "print JSON")
    .action(runBatchPlan);
  batch
    .command("run")
    .description("Build one day of every model (default: yesterday by the batch clock).")
    .argument("[project]", "project folder", ".")
    .option("--date <day>", "day to build, YYYY-MM-DD")
    .option("--model <id...>", "only these models (and what depends on them)")
    .option("--json", "print JSON")
    .action(runBatchRun);
  batch
    .command("backfill")
    .description("Build every partition of a day range that is not fresh; run it again to resume.")
    .argument("[project]", "project folder", ".")
    .requiredOption("--from <day>", "first day, YYYY-MM-DD")
    .requiredOption("--to <day>", "last day, YYYY-MM-DD")
    .option("--model <id...>", "only these models (and what depends on them)")
    .option("--force", "rebuild fresh partitions too")
    .option("--json", "print JSON")
    .action(runBatchBackfill);
  batch
    .command("repair")
    .description("Rebuild every stale, failed or missing partition now.")
    .argument("[project]", "project folder", ".")
    .option("--json", "print JSON")
    .action(runBatchRepair);
  batch
    .command("runs")
    .description("Show the run history with status, timing and errors.")
    .argument("[project]", "project folder", ".")
    .option("--limit <n>", "how many runs", positive, 20)
    .option("--json", "print JSON, with each run's tasks")
    .action(runBatchRuns);
  batch
    .command("partitions")
    .description("Show fresh, stale, failed and missing partitions per model.")
    .argument("[project]", "project folder", ".")
    .option("--model <id>", "one model")
    .option("--status <status>", "fresh, stale, failed or missing")
    .option("--json", "print JSON")
    .action(runBatchPartitions);

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    const line = isTributaryError(e) ? `${e.code}: ${e.message}` : `error: ${(e as Error).message}`;
    process.stderr.write(`${line}\n`);
    process.exitCode = 1;
  }
}

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("a positive whole number");
  return n;
}

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError("a port number (0-65535)");
  return n;
}
