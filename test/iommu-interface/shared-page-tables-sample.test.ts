import { describe, expect, it } from "vitest";
import { sampleOk } from "../../samples/sample-definition.js";
import sharedPageTables from "../../samples/shared-page-tables-sample.js";

describe("the shared-page-tables sample", () => {
  it("holds every check, with one table for both units and no allocation in the reserved ring", async () => {
    const report = await sharedPageTables.run({ seed: 4, json: true });
    expect(report.checks.filter((check) => !check.ok)).toEqual([]);
    expect(sampleOk(report)).toBe(true);
    expect(report.figures.invalidatedUnits).toBe(2);
    expect(report.figures.ringTableAllocations).toBe(0);
    expect(report.figures.tableFramesSecondDevice).toBe(0);
  });
});
