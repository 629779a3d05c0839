import { it } from "vitest";
import { testMachine } from "../../src/testing/index.js";

it("leaks pool", () => {
  const t = testMachine({ remapping: "strict" });
  t.kernel.ExAllocatePoolWithTag(0, 64, "Leak");
  t.kernel.MmAllocateContiguousMemory(8192, 2 ** 32 - 1);
});
