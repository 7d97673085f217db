// Tests of day arithmetic, including time zones with daylight saving.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isTributaryError } from "../errors.js";
import { addDays, dayOf, dayRange, dayStartMs, isDay, parseDay } from "./days.js";

describe("days", () => {
  test("isDay accepts real calendar days only", () => {
    assert.ok(isDay("2001-02-28"));
    assert.ok(isDay("2000-02-29"));
    assert.ok(!isDay("2001-02-29"));
    assert.ok(!isDay("2001-13-01"));
    assert.ok(!isDay("2001-1-01"));
    assert.throws(
      () => parseDay("yesterday"),
      (e) => isTributaryError(e, "TRB_BATCH_BAD_DATE"),
    );
  });

  test("ranges include both ends and cross month and year ends", () => {
    assert.deepEqual(dayRange("2000-12-30", "2001-01-02"), [
      "2000-12-30",
      "2000-12-31",
      "2001-01-01",
      "2001-01-02",
    ]);
    assert.deepEqual(dayRange("2001-03-01", "2001-03-01"), ["2001-03-01"]);
    assert.equal(addDays("2001-03-01", -1), "2001-02-28");
    assert.throws(
      () => dayRange("2001-01-02", "2001-01-01"),
      (e) => isTributaryError(e, "TRB_BATCH_BAD_DATE"),
    );
  });

  test("the day of an instant depends on the zone", () => {
    const t = Date.parse("2001-01-02T03:00:00Z");
    assert.equal(dayOf(t, "UTC"), "2001-01-02");
    assert.equal(dayOf(t, "America/New_York"), "2001-01-01");
    assert.equal(dayOf(t, "Asia/Tokyo"), "2001-01-02");
  });

  test("a day starts at local midnight, also on daylight-saving days", () => {
    assert.equal(dayStartMs("2001-01-02", "UTC"), Date.parse("2001-01-02T00:00:00Z"));
    assert.equal(dayStartMs("2001-01-02", "America/New_York"), Date.parse("2001-01-02T05:00:00Z"));
    // US DST began 2001-04-01 at 02:00 local: that day starts at EST midnight, the next at EDT.
    assert.equal(dayStartMs("2001-04-01", "America/New_York"), Date.parse("2001-04-01T05:00:00Z"));
    assert.equal(dayStartMs("2001-04-02", "America/New_York"), Date.parse("2001-04-02T04:00:00Z"));
    for (const day of ["2001-03-31", "2001-04-01", "2001-10-28", "2001-10-29"]) {
      const start = dayStartMs(day, "America/New_York");
      assert.equal(dayOf(start, "America/New_York"), day);
      assert.equal(dayOf(start - 1, "America/New_York"), addDays(day, -1));
    }
  });
});
