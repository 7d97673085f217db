// The `tributary` command: up, init, query, catalog, flush.
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { isTributaryError } from "../errors.js";
import { runCatalog, runFlush, runInit, runQuery, runUp } from "./commands.js";

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

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError("a port number (0-65535)");
  return n;
}
