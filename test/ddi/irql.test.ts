import { describe, expect, it } from "vitest";
import {
  IRQL_NOT_GREATER_OR_EQUAL,
  IRQL_UNEXPECTED_VALUE,
  KMODE_EXCEPTION_NOT_HANDLED,
  SPIN_LOCK_ALREADY_OWNED,
  SPIN_LOCK_NOT_OWNED,
} from "../../src/ddi/bug-check-codes.js";
import { LevelSensitive } from "../../src/ddi/io-constants.js";
import { KDPC } from "../../src/ddi/kdpc.js";
import { KSPIN_LOCK } from "../../src/ddi/kspin-lock.js";
import { IRQL_NOT_LESS_OR_EQUAL } from "../../src/hal/wdm/bug-check.js";
import { zeroedDeviceDescription } from "../../src/hal/wdm/device-description.js";
import { APC_LEVEL, DISPATCH_LEVEL, HIGH_LEVEL, PASSIVE_LEVEL } from "../../src/hal/wdm/irql.js";
import { STATUS_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import { bugCheckOf, ddiFixture } from "./ddi-fixture.js";

describe("IRQL routines", () => {
  it("KeRaiseIrql returns the old level and KeLowerIrql goes back", () => {
    const { kernel } = ddiFixture();
    expect(kernel.KeGetCurrentIrql()).toBe(PASSIVE_LEVEL);
    expect(kernel.KeRaiseIrql(APC_LEVEL)).toBe(PASSIVE_LEVEL);
    expect(kernel.KeRaiseIrql(DISPATCH_LEVEL)).toBe(APC_LEVEL);
    expect(kernel.KeRaiseIrql(DISPATCH_LEVEL)).toBe(DISPATCH_LEVEL);
    expect(kernel.KeGetCurrentIrql()).toBe(DISPATCH_LEVEL);
    kernel.KeLowerIrql(PASSIVE_LEVEL);
    expect(kernel.KeGetCurrentIrql()).toBe(PASSIVE_LEVEL);
    expect(kernel.KeRaiseIrqlToDpcLevel()).toBe(PASSIVE_LEVEL);
    kernel.KeLowerIrql(PASSIVE_LEVEL);
  });

  it("raising below the current level and lowering above it are bug checks, and change nothing", () => {
    const { kernel } = ddiFixture();
    kernel.KeRaiseIrql(DISPATCH_LEVEL);
    const raise = bugCheckOf(() => kernel.KeRaiseIrql(APC_LEVEL));
    expect(raise.code).toBe(IRQL_NOT_GREATER_OR_EQUAL);
    expect(raise.parameters).toEqual([DISPATCH_LEVEL, APC_LEVEL, 0, 0]);
    expect(raise.message).toContain("IRQL_NOT_GREATER_OR_EQUAL");
    expect(bugCheckOf(() => kernel.KeLowerIrql(HIGH_LEVEL)).code).toBe(IRQL_NOT_LESS_OR_EQUAL);
    expect(bugCheckOf(() => kernel.KeRaiseIrql(16)).code).toBe(IRQL_NOT_GREATER_OR_EQUAL);
    expect(bugCheckOf(() => kernel.KeRaiseIrql(2.5)).code).toBe(IRQL_NOT_GREATER_OR_EQUAL);
    expect(kernel.KeGetCurrentIrql()).toBe(DISPATCH_LEVEL);
    kernel.KeLowerIrql(PASSIVE_LEVEL);
  });

  it("a PASSIVE_LEVEL routine called at DISPATCH_LEVEL is IRQL_NOT_LESS_OR_EQUAL", () => {
    const { kernel, io, device } = ddiFixture();
    io.enumerate();
    const pdo = io.node(device.requesterId).pdo;
    kernel.KeRaiseIrql(DISPATCH_LEVEL);
    const check = bugCheckOf(() => kernel.IoGetDmaAdapter(pdo, zeroedDeviceDescription()));
    expect(check.code).toBe(IRQL_NOT_LESS_OR_EQUAL);
    expect(check.parameters[1]).toBe(DISPATCH_LEVEL);
    expect(check.message).toContain("IoGetDmaAdapter");
    expect(check.message).toContain("PASSIVE_LEVEL");
    kernel.IoStartNextPacket(pdo, false);
    kernel.KeLowerIrql(PASSIVE_LEVEL);
    expect(bugCheckOf(() => kernel.IoStartNextPacket(pdo, false)).code).toBe(IRQL_NOT_GREATER_OR_EQUAL);
  });

  it("a DPC runs at DISPATCH_LEVEL once the IRQL drops below it, once per insert", () => {
    const { kernel, machine } = ddiFixture();
    const dpc = new KDPC();
    const runs: [number, unknown, unknown, unknown][] = [];
    kernel.KeInitializeDpc(
      dpc,
      (_d, context, a1, a2) => runs.push([kernel.KeGetCurrentIrql(), context, a1, a2]),
      "ctx",
    );
    const old = kernel.KeRaiseIrql(DISPATCH_LEVEL);
    expect(kernel.KeInsertQueueDpc(dpc, 1, 2)).toBe(true);
    expect(kernel.KeInsertQueueDpc(dpc, 3, 4)).toBe(false);
    expect(runs).toEqual([]);
    kernel.KeLowerIrql(old);
    expect(runs).toEqual([[DISPATCH_LEVEL, "ctx", 1, 2]]);
    expect(kernel.KeGetCurrentIrql()).toBe(PASSIVE_LEVEL);

    expect(kernel.KeInsertQueueDpc(dpc, 5, 6)).toBe(true);
    expect(kernel.KeRemoveQueueDpc(dpc)).toBe(true);
    expect(kernel.KeRemoveQueueDpc(dpc)).toBe(false);
    machine.runUntilIdle();
    expect(runs).toHaveLength(1);
    expect(kernel.KeInsertQueueDpc(dpc, 7, 8)).toBe(true);
    machine.runUntilIdle();
    expect(runs.at(-1)).toEqual([DISPATCH_LEVEL, "ctx", 7, 8]);
  });

  it("a DPC that returns at another IRQL is IRQL_UNEXPECTED_VALUE", () => {
    const { kernel, machine } = ddiFixture();
    const dpc = new KDPC();
    kernel.KeInitializeDpc(dpc, () => kernel.KeRaiseIrql(HIGH_LEVEL), undefined);
    kernel.KeInsertQueueDpc(dpc, undefined, undefined);
    expect(bugCheckOf(() => machine.runUntilIdle()).code).toBe(IRQL_UNEXPECTED_VALUE);
    expect(kernel.KeGetCurrentIrql()).toBe(PASSIVE_LEVEL);
  });

  it("an uninitialized or foreign DPC object is a bad pointer", () => {
    const { kernel } = ddiFixture();
    expect(bugCheckOf(() => kernel.KeInsertQueueDpc(new KDPC(), 0, 0)).code).toBe(
      KMODE_EXCEPTION_NOT_HANDLED,
    );
    expect(bugCheckOf(() => kernel.KeInsertQueueDpc({} as KDPC, 0, 0)).code).toBe(
      KMODE_EXCEPTION_NOT_HANDLED,
    );
  });

  it("a spin lock raises to DISPATCH_LEVEL, holds DPCs off, and cannot be taken twice", () => {
    const { kernel } = ddiFixture();
    const lock = new KSPIN_LOCK();
    kernel.KeInitializeSpinLock(lock);
    const dpc = new KDPC();
    let ran = false;
    kernel.KeInitializeDpc(
      dpc,
      () => {
        ran = true;
      },
      undefined,
    );
    const old = kernel.KeAcquireSpinLock(lock);
    expect(old).toBe(PASSIVE_LEVEL);
    expect(kernel.KeGetCurrentIrql()).toBe(DISPATCH_LEVEL);
    kernel.KeInsertQueueDpc(dpc, undefined, undefined);
    expect(bugCheckOf(() => kernel.KeAcquireSpinLockAtDpcLevel(lock)).code).toBe(SPIN_LOCK_ALREADY_OWNED);
    expect(ran).toBe(false);
    kernel.KeReleaseSpinLock(lock, old);
    expect(ran).toBe(true);
    expect(kernel.KeGetCurrentIrql()).toBe(PASSIVE_LEVEL);
    expect(bugCheckOf(() => kernel.KeReleaseSpinLock(lock, old)).code).toBe(IRQL_NOT_GREATER_OR_EQUAL);
    kernel.KeRaiseIrql(DISPATCH_LEVEL);
    expect(bugCheckOf(() => kernel.KeReleaseSpinLockFromDpcLevel(lock)).code).toBe(SPIN_LOCK_NOT_OWNED);
    kernel.KeLowerIrql(PASSIVE_LEVEL);
  });

  it("an ISR runs at its device IRQL and KeSynchronizeExecution at the synchronize level", () => {
    const { kernel, machine } = ddiFixture({}, false);
    const seen: number[] = [];
    const { Status, InterruptObject } = kernel.IoConnectInterrupt(
      () => {
        seen.push(kernel.KeGetCurrentIrql());
        return true;
      },
      undefined,
      undefined,
      40,
      5,
      6,
      LevelSensitive,
      false,
      1,
      false,
    );
    expect(Status).toBe(STATUS_SUCCESS);
    machine.scheduler.requestInterrupt(40);
    machine.runUntilIdle();
    expect(seen).toEqual([5]);
    expect(
      kernel.KeSynchronizeExecution(
        InterruptObject!,
        () => seen.push(kernel.KeGetCurrentIrql()) > 0,
        undefined,
      ),
    ).toBe(true);
    expect(seen).toEqual([5, 6]);
    expect(kernel.KeGetCurrentIrql()).toBe(PASSIVE_LEVEL);
    kernel.IoDisconnectInterrupt(InterruptObject!);
    expect(machine.scheduler.isConnected(40)).toBe(false);
  });
});
