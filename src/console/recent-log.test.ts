// RecentLog keeps the latest warnings and errors a pino logger writes, newest first.
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { TributaryError } from "../errors.js";
import { RecentLog } from "./recent-log.js";

test("keeps warnings and errors only, newest first, at most its size", async () => {
  const recent = new RecentLog(3);
  const log = pino({ level: "info" }, pino.multistream([{ level: "warn", stream: recent.stream }]));
  log.info("not kept");
  log.warn("first");
  log.error({ err: new TributaryError("TRB_LAND_FLUSH_TIMEOUT", "slow") }, "second");
  log.warn({ code: "TRB_X" }, "third");
  log.fatal("fourth");
  await new Promise((r) => setImmediate(r));
  const entries = recent.entries();
  assert.deepEqual(
    entries.map((e) => [e.level, e.msg, e.code]),
    [
      ["error", "fourth", null],
      ["warn", "third", "TRB_X"],
      ["error", "second: slow", "TRB_LAND_FLUSH_TIMEOUT"],
    ],
  );
  assert.ok(entries.every((e) => !Number.isNaN(Date.parse(e.time))));
});
