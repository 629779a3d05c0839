/** Injection tokens of the machine layer. */
export const MachineOptionsToken = Symbol.for("machine.MachineOptions");
