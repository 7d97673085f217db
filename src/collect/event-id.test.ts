// Tests of generated event ids: UUIDv7 layout, the embedded time, and order within a millisecond.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { uuidv7 } from "./event-id.js";

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string): number => parseInt(id.replaceAll("-", "").slice(0, 12), 16);

describe("uuidv7", () => {
  test("has the RFC 9562 layout: version 7, variant 10", () => {
    for (let i = 0; i < 1000; i++) assert.match(uuidv7(), UUIDV7);
  });

  test("embeds the given time in its first 48 bits", () => {
    for (const t of [0, 1, Date.UTC(2001, 0, 1), Date.UTC(2024, 4, 6, 7, 8, 9, 10), 2 ** 48 - 1]) {
      assert.equal(msOf(uuidv7(t)), t);
    }
    const before = Date.now();
    const id = uuidv7();
    assert.ok(msOf(id) >= before && msOf(id) <= Date.now());
  });

  test("ids of one millisecond sort in the order they were made, even past 4096 of them", () => {
    const t = Date.UTC(2024, 0, 1);
    // A request may carry 10 000 events that share one received time.
    const ids = Array.from({ length: 10_000 }, () => uuidv7(t));
    for (let i = 1; i < ids.length; i++)
      assert.ok(ids[i - 1]! < ids[i]!, `id ${i} sorts after id ${i - 1}`);
    assert.equal(new Set(ids).size, ids.length);
  });

  test("ids of later milliseconds sort after earlier ones", () => {
    const t = Date.UTC(2024, 0, 2);
    const ids = [uuidv7(t), uuidv7(t), uuidv7(t + 1), uuidv7(t + 1), uuidv7(t + 1000)];
    assert.deepEqual([...ids].sort(), ids);
    // After an overflow ran the encoded time ahead, the next millisecond still sorts after.
    const t2 = Date.UTC(2024, 0, 3);
    const burst = [
      ...Array.from({ length: 5000 }, () => uuidv7(t2)),
      uuidv7(t2 + 1),
      uuidv7(t2 + 1),
      uuidv7(t2 + 2),
    ];
    for (let i = 1; i < burst.length; i++) assert.ok(burst[i - 1]! < burst[i]!, `id ${i}`);
  });

  test("ids are unique", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20_000; i++) ids.add(uuidv7());
    assert.equal(ids.size, 20_000);
  });
});
