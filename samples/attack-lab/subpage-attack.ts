/**
 * Class 3, a secret co-located in the page of a sub-page DMA buffer (perf-security-anchors
 * §14.2.3, Thunderclap stories 4-6): the driver correctly maps a 1 KiB transmit buffer and a
 * 1 KiB receive buffer from the nonpaged pool, and the pool put a kernel object (a key and a
 * function pointer) between them in the same 4 KiB page. While each transfer is mapped, the NIC
 * reads the whole page around the transmit address and writes the whole page around the receive
 * address. IOMMU pages are 4 KiB: without more, the key leaks and the pointer is overwritten.
 * The untrusted-device policy (the NIC behind an external port) bounces every partly covered page
 * through a page that holds only the buffer's bytes, so the rest of the page is never exposed.
 */
import { PAGE_SIZE } from "../../src/platform/page.js";
import type { AttackDefinition, Observation } from "./attack.js";
import { AttackLab, contains, secretBytes } from "./lab.js";

const BUFFER = 1024;
const OBJECT = 512;

function pageOf(address: number): number {
  return Math.floor(address / PAGE_SIZE);
}

function run(untrusted: boolean, seed: number): Observation {
  const lab = new AttackLab({ mode: "strict", seed, external: untrusted });
  const nic = lab.nics[0]!;
  const tx = lab.poolBuffer(BUFFER);
  const object = secretBytes("key+m_free ptr", OBJECT, seed);
  const victim = lab.kernelObject(object);
  const rx = lab.poolBuffer(BUFFER);
  lab.kernel.WriteMemory(tx.va, new Uint8Array(BUFFER).fill(0x11));
  const page = pageOf(tx.physicalAddress);
  if (pageOf(victim.physicalAddress) !== page || pageOf(rx.physicalAddress) !== page) {
    return {
      leaked: false,
      corrupted: false,
      faults: 0,
      detail: "",
      precondition: "the pool did not co-locate the buffers and the object",
    };
  }
  const send = lab.transmit(0, tx);
  lab.runUntilProgrammed(0, 1);
  const txAddress = nic.programmed[0]!.address;
  const seen = nic.read(txAddress - (txAddress % PAGE_SIZE), PAGE_SIZE);
  lab.runUntil(() => send.completed);
  const receive = lab.receive(0, rx);
  lab.runUntilProgrammed(0, 2);
  const rxAddress = nic.programmed[1]!.address;
  nic.write(rxAddress - (rxAddress % PAGE_SIZE), new Uint8Array(PAGE_SIZE).fill(0x41));
  lab.runUntil(() => receive.completed);
  const leaked = contains(seen.bytes.subarray(0, seen.bytesDone), object);
  const corrupted = Buffer.compare(lab.read(victim.va, OBJECT), object) !== 0;
  const faults = lab.faults(0);
  const exposed = seen.bytes.subarray(0, seen.bytesDone).reduce((n, byte) => n + (byte === 0 ? 0 : 1), 0);
  const detail = leaked
    ? `the 4 KiB mapping of a ${BUFFER}-byte buffer exposed ${exposed} non-zero bytes, the key among them; the page write ${corrupted ? "overwrote the object" : "missed the object"}`
    : `bounce pages held only the buffers: ${exposed} non-zero bytes visible, the object ${corrupted ? "changed" : "untouched"}`;
  return { leaked, corrupted, faults, detail };
}

export const subpageAttack: AttackDefinition = {
  id: 3,
  key: "subpage",
  title: "secret in the same page as a sub-page DMA buffer",
  mitigation: "untrusted-device policy: sub-page bouncing",
  practice:
    "Linux bounces sub-page buffers of untrusted (Thunderbolt) devices through swiotlb (Lu Baolu, 2019); macOS 10.12.4 moved mbuf flags out of DMA-able memory and XOR-blinds the pointers (perf-security-anchors §8, §10)",
  configurations: [
    { label: "internal device", mitigated: false, expected: "leaked" },
    { label: "untrusted (bounce)", mitigated: true, expected: "blocked" },
  ],
  run: (configuration, seed) => run(configuration.mitigated, seed),
  costConfig: (mitigated, seed) => ({ mode: "strict", seed, external: mitigated }),
};
