import { describe, expect, it } from "vitest";
import attackLabSample, { ATTACKS, priceMitigation, runAttack } from "../../samples/attack-lab-sample.js";
import { sampleOk } from "../../samples/sample-definition.js";

describe("the attack lab", () => {
  for (const attack of ATTACKS) {
    for (const configuration of attack.configurations) {
      it(`${attack.key}, ${configuration.label}: ${configuration.expected}`, () => {
        const result = runAttack(attack, configuration, 3);
        expect(result.problem).toBeUndefined();
        expect(result.outcome).toBe(configuration.expected);
        if (configuration.mitigated)
          expect(result.observation!.leaked || result.observation!.corrupted).toBe(false);
      });
    }
  }

  it("prices each mitigation by what it adds to a benign workload", () => {
    const byKey = Object.fromEntries(ATTACKS.map((attack) => [attack.key, priceMitigation(attack, 1)]));
    expect(byKey.bypass!.invalidations).toBeGreaterThan(0);
    expect(byKey.bypass!.iotlbMisses).toBeGreaterThan(0);
    expect(byKey.subpage!.bounces).toBeGreaterThan(0);
    expect(byKey["stale-iotlb"]!.baseline.invalidations).toBeLessThan(
      byKey["stale-iotlb"]!.mitigated.invalidations,
    );
    expect(byKey["shared-domain"]!.tableFrames).toBeGreaterThan(0);
    expect(byKey["withheld-completion"]!.cyclesPerTransfer).toBe(0);
    for (const cost of Object.values(byKey)) {
      expect(cost.baseline.failed).toBe(0);
      expect(cost.mitigated.failed).toBe(0);
    }
  });

  it("reports ok only when every attack ended as expected", async () => {
    const report = await attackLabSample.run({ seed: 1, json: true });
    expect(sampleOk(report)).toBe(true);
    expect(report.figures["stale-iotlb.lazy.outcome"]).toBe("leaked");
    expect(report.figures["stale-iotlb.strict.outcome"]).toBe("blocked");
  });
});
