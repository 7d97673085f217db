// Runs the Stream contract suite against the embedded SQLite log.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { streamContract } from "../contracts/stream.case.js";
import { SqliteStream } from "./stream-log.js";

streamContract("SqliteStream", (dir) => new SqliteStream(join(dir, "stream.db")));

describe("SqliteStream dedup reload", () => {
  test("a restart recognizes retries of ids beyond the eagerly reloaded ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trb-reload-"));
    const settings = {
      name: "s",
      dedupWindowMs: 600_000,
      dedupMaxIds: 1_000_000,
      retainMs: 3_600_000,
    };
    try {
      const first = new SqliteStream(join(dir, "stream.db"));
      await first.open(settings);
      // 120 appends of 1000 ids: more than the 50k reloaded before the stream opens.
      for (let b = 0; b < 120; b++) {
        const records = Array.from({ length: 1000 }, (_, i) => ({
          id: `b${b}-${i}`,
          time: 0,
          data: "{}",
        }));
        await first.append("s", records);
      }
      await first.close();
      const second = new SqliteStream(join(dir, "stream.db"));
      await second.open(settings);
      // Let the background reload finish (it runs between appends on the writer thread).
      await new Promise((r) => setTimeout(r, 1500));
      const retry = [0, 30, 69, 70, 119].map((b) => ({ id: `b${b}-7`, time: 0, data: "{}" }));
      const results = await second.append("s", [...retry, { id: "new", time: 0, data: "{}" }]);
      assert.deepEqual(
        results.map((r) => r.duplicate),
        [true, true, true, true, true, false],
      );
      assert.equal(results[0]!.seq, 8, "a duplicate reports the position of the stored copy");
      assert.equal(await second.end("s"), 120_002);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
