// Tests of the writer's duplicate check: a fingerprint hit counts only when the stored id matches.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DedupWindow } from "./dedup-window.js";
import { seenBefore, type Table } from "./stream-writer.js";

/** A table whose log holds `stored` (position → id); the window is real. */
function table(stored: Map<number, string>, older?: DedupWindow): Table {
  return {
    settings: { name: "s", dedupWindowMs: 60_000, dedupMaxIds: 100, retainMs: 0 },
    dedup: new DedupWindow(60_000, 100),
    insert: undefined as never,
    next: 1,
    older,
    olderNewest: older ? 1_000 : 0,
    storedId: (seq) => stored.get(seq) ?? false,
  };
}

describe("seenBefore", () => {
  test("a new id is held at the given position; its retry is a duplicate of that position", () => {
    const log = new Map<number, string>();
    const t = table(log);
    assert.equal(seenBefore(t, "a", 1, 1_000), undefined);
    log.set(1, "a");
    assert.equal(seenBefore(t, "a", 2, 1_001), 1);
  });

  test("a fingerprint hit whose stored id differs is a new event (a collision is not a duplicate)", () => {
    // A 64-bit fingerprint collision cannot be produced on demand: a window that answers a hit
    // for every id stands in for one.
    const log = new Map<number, string>([[7, "other-id"]]);
    const t = table(log);
    (t as { dedup: DedupWindow }).dedup = { add: () => 7 } as unknown as DedupWindow;
    assert.equal(seenBefore(t, "mine", 8, 1_000), undefined);
    log.set(7, "mine");
    assert.equal(seenBefore(t, "mine", 8, 1_000), 7, "same id stored: a duplicate");
    log.delete(7);
    assert.equal(seenBefore(t, "mine", 8, 1_000), 7, "trimmed from the log: the window is trusted");
  });

  test("ids reloaded in the background count until the newest of them leaves the window", () => {
    const older = new DedupWindow(Number.MAX_SAFE_INTEGER, 100);
    older.add("old", 3, 1_000);
    const t = table(new Map([[3, "old"]]), older);
    assert.equal(seenBefore(t, "old", 10, 2_000), 3);
    assert.equal(seenBefore(t, "old", 10, 1_000 + 60_001), undefined, "expired with its window");
    assert.equal(t.older, undefined, "the reloaded window is dropped once expired");
  });
});
