/**
 * rogue: no driver. A malicious bus master (an FPGA board posing as a network card) is told by
 * the attacker to read a page holding a secret key and to overwrite a kernel dispatch table, both
 * at their physical addresses, as a PCILeech-style attack does after scanning memory.
 *
 * Passthrough is modelled as the platform runs it for every device it finds (Linux iommu=pt:
 * the identity domain at discovery): the scenario gives the board's requester a pass-through
 * context entry, since the HAL only does so for devices whose driver took an adapter.
 */
import { RogueDevice } from "../src/devices/rogue-device.js";
import { Iommu } from "../src/iommu/iommu.js";
import { kernelStructure } from "./bypass-scenarios.js";
import { formatAddress, plural } from "./explain.js";
import { KERNEL_SECRET_OWNER, KERNEL_STRUCTURE_OWNER, sameBytes } from "./host-memory.js";
import type { ScenarioDefinition } from "./scenario-run.js";

const SECRET = new TextEncoder().encode(
  "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC (simulated) -----END PRIVATE KEY-----",
);
const STRUCTURE_BYTES = 4096;
/** When the attacker strikes, in virtual ns after power-on. */
const ATTACK_AT_NS = 50_000;

export const rogueScenario: ScenarioDefinition = {
  driver: "rogue",
  modules: [],
  run(run) {
    const rogue = run.plug(new RogueDevice(), true);
    if (run.mode === "passthrough") run.machine.get(Iommu).attachPassthrough(rogue.requesterId);
    const page = new Uint8Array(4096);
    page.set(SECRET, 1024);
    const secret = run.host.plant(KERNEL_SECRET_OWNER, page);
    const structure = run.host.plant(KERNEL_STRUCTURE_OWNER, kernelStructure(STRUCTURE_BYTES));
    const payload = new Uint8Array(64).fill(0xcc);

    run.observe();
    run.machine.scheduler.schedule(
      ATTACK_AT_NS,
      () => {
        rogue.read(secret.physicalAddress, secret.length);
        rogue.write(structure.physicalAddress + 256, payload);
      },
      "rogue attack",
    );
    run.run();

    const leaked = rogue.sawBytes(SECRET);
    const structureIntact = sameBytes(run.host.read(structure.va, structure.length), structure.bytes);
    const [read, write] = rogue.log;
    return {
      leaked,
      dataIntact: !leaked && structureIntact,
      explain: (r) => {
        const readWhat = `read of the key at ${formatAddress(secret.physicalAddress)} ${read?.outcome ?? "not made"}`;
        const writeWhat = `write to the dispatch table at ${formatAddress(structure.physicalAddress + 256)} ${write?.outcome ?? "not made"}`;
        if (r.outcome === "blocked")
          return `${readWhat}, ${writeWhat}: ${plural(r.faults, "IOMMU fault")}, the board has no mapping at all`;
        return `${readWhat}${leaked ? " (the key left the machine)" : ""}, ${writeWhat}${structureIntact ? "" : " (table overwritten)"}`;
      },
    };
  },
};
