// Tests of the dedup window: time and count bounds, rollback, and a model-based property.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { DedupWindow } from "./dedup-window.js";

describe("DedupWindow", () => {
  test("remembers an id with the position of its stored copy", () => {
    const w = new DedupWindow(1_000, 10);
    assert.equal(w.get("a", 0), undefined);
    w.add("a", 7, 0);
    assert.equal(w.get("a", 0), 7);
    assert.equal(w.get("a", 1_000), 7, "still held at exactly the window's edge");
    assert.equal(w.get("b", 0), undefined);
    assert.equal(w.size, 1);
  });

  test("a second add of a held id keeps the first copy and its time", () => {
    const w = new DedupWindow(100, 10);
    w.add("a", 1, 0);
    w.add("a", 2, 50);
    assert.equal(w.get("a", 60), 1);
    assert.equal(w.get("a", 101), undefined, "the window runs from the first add");
  });

  test("forgets ids older than the window", () => {
    const w = new DedupWindow(100, 10);
    w.add("a", 1, 0);
    w.add("b", 2, 50);
    assert.equal(w.get("a", 101), undefined);
    assert.equal(w.get("b", 101), 2);
    assert.equal(w.size, 1);
    assert.equal(w.get("b", 151), undefined);
    assert.equal(w.size, 0);
  });

  test("holds at most maxIds, forgetting the oldest first", () => {
    const w = new DedupWindow(60_000, 3);
    for (const [i, id] of ["a", "b", "c", "d"].entries()) w.add(id, i + 1, i);
    assert.equal(w.size, 3);
    assert.equal(w.get("a", 10), undefined);
    assert.deepEqual(
      ["b", "c", "d"].map((id) => w.get(id, 10)),
      [2, 3, 4],
    );
  });

  test("an id added after it expired is held for a new window, even without a get in between", () => {
    const w = new DedupWindow(100, 10);
    w.add("a", 1, 0);
    w.add("a", 5, 500);
    assert.equal(w.get("a", 500), 5);
  });

  test("forget drops ids of a rolled-back transaction; a retry holds them for a full window", () => {
    const w = new DedupWindow(100, 10);
    w.add("old", 1, 0);
    w.add("a", 2, 10);
    w.add("b", 3, 10);
    w.forget(["a", "b"]);
    assert.equal(w.get("a", 10), undefined);
    assert.equal(w.get("b", 10), undefined);
    assert.equal(w.get("old", 10), 1);
    // The retry stores them again later; the failed attempt must not shorten their window.
    w.add("a", 2, 80);
    w.add("b", 3, 80);
    assert.equal(w.get("a", 150), 2);
    assert.equal(w.get("b", 150), 3);
    assert.equal(w.get("old", 150), undefined);
  });

  test("forget does not let the window grow past maxIds or evict a retried id early", () => {
    const w = new DedupWindow(60_000, 3);
    w.add("a", 1, 0);
    w.forget(["a"]);
    for (const [i, id] of ["a", "b", "c", "d", "e"].entries()) w.add(id, i + 1, 1);
    assert.ok(w.size <= 3, `size ${w.size}`);
    assert.equal(w.get("a", 2), undefined);
    assert.equal(w.get("b", 2), undefined, "the oldest ids go first");
    assert.deepEqual(
      ["c", "d", "e"].map((id) => w.get(id, 2)),
      [3, 4, 5],
    );
  });

  test("stays correct across internal compaction of a long history", () => {
    const w = new DedupWindow(1_000_000, 1_000);
    for (let i = 0; i < 150_000; i++) w.add(`id${i}`, i + 1, i);
    assert.equal(w.size, 1_000);
    assert.equal(w.get("id148999", 150_000), undefined);
    assert.equal(w.get("id149000", 150_000), 149_001);
    assert.equal(w.get("id149999", 150_000), 150_000);
  });

  // Model: the window holds the ids of its effective adds (an add of a held id is a duplicate and
  // changes nothing, like a retried append). `get(id, now)` returns the position of the id's latest
  // effective add iff that add is among the last `max` effective adds and happened at or after
  // `now - window`. Times never go back, as with the stream's clock. A rollback forgets the latest
  // adds (a failed transaction); ids the count bound pushed out for them stay forgotten.
  test("property: get answers iff the id was added within the window and is among the last maxIds", () => {
    const ids = ["a", "b", "c", "d", "e", "f", "g"];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("add" as const),
        id: fc.constantFrom(...ids),
        dt: fc.integer({ min: 0, max: 40 }),
      }),
      fc.record({
        kind: fc.constant("get" as const),
        id: fc.constantFrom(...ids),
        dt: fc.integer({ min: 0, max: 40 }),
      }),
      fc.record({ kind: fc.constant("rollback" as const), n: fc.integer({ min: 1, max: 3 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(op, { maxLength: 80 }),
        (windowMs, max, ops) => {
          const w = new DedupWindow(windowMs, max);
          const adds: { id: string; seq: number; at: number }[] = [];
          /** Index of the first add the count bound has not pushed out. */
          let floor = 0;
          const expected = (id: string, now: number): number | undefined => {
            const hit = adds.slice(floor).findLast((x) => x.id === id);
            return hit !== undefined && hit.at >= now - windowMs ? hit.seq : undefined;
          };
          let now = 0;
          let seq = 0;
          for (const o of ops) {
            if (o.kind === "rollback") {
              const undone = adds.splice(Math.max(0, adds.length - o.n));
              floor = Math.min(floor, adds.length);
              w.forget(undone.map((x) => x.id));
              continue;
            }
            now += o.dt;
            if (o.kind === "add") {
              const held = expected(o.id, now) !== undefined;
              w.add(o.id, ++seq, now);
              if (!held) {
                adds.push({ id: o.id, seq, at: now });
                floor = Math.max(floor, adds.length - max);
              }
              assert.ok(w.size <= max, `size ${w.size} > ${max}`);
            } else {
              assert.equal(w.get(o.id, now), expected(o.id, now), `get(${o.id}) at ${now}`);
            }
          }
          for (const id of ids) assert.equal(w.get(id, now), expected(id, now), `final get(${id})`);
        },
      ),
      { numRuns: 500 },
    );
  });
});
