/**
 * dma-ddi-sim/testing: the kit for people who test drivers written against the DDI, and for the
 * framework's own tests (docs/testing.md). Importing it registers the DMA matchers with vitest.
 */
import "reflect-metadata";
import "./matchers.js";

export { REMAPPING_MODES, type RemappingMode } from "../machine/machine-options.js";
export { concatBytes, describeDifference, sameBytes, testBytes } from "./bytes.js";
export { DmaErrorInjector, type DmaErrorRule, InjectedDmaError } from "./dma-error-injector.js";
export { forEachMode } from "./for-each-mode.js";
export { KernelAllocationTracker } from "./kernel-allocation-tracker.js";
export { DEFAULT_IGNORED_OWNERS, type Leak, type LeakCheckOptions, LeakError } from "./leak-check.js";
export {
  type DmaMatchers,
  describeFault,
  dmaMatchers,
  type ExpectedFault,
  type TransferredOptions,
} from "./matchers.js";
export {
  DEFAULT_SCRIPT,
  type DeviceDmaRecord,
  MAX_DESCRIPTORS,
  type RegisterWrite,
  type Script,
  type ScriptAction,
  ScriptableDevice,
  type ScriptableDeviceOptions,
  type ScriptRequest,
  type ScriptSegment,
} from "./scriptable-device.js";
export {
  DESCRIPTOR_SIZE,
  SCRIPTABLE_DEVICE_ID,
  SCRIPTABLE_HARDWARE_ID,
  SCRIPTABLE_ID_VALUE,
  SCRIPTABLE_VENDOR_ID,
  ScriptableCommand,
  ScriptableError,
  ScriptableRegister,
  ScriptableStatus,
} from "./scriptable-registers.js";
export { TEST_BUFFER_OWNER, TestBuffer, type TestBufferOptions } from "./test-buffer.js";
export {
  createTestMachine,
  type RunOptions,
  type SnapshotOptions,
  TestMachine,
  type TestMachineOptions,
  testMachine,
} from "./test-machine.js";
