/** IRQL names of the DDI, on the platform's levels. */
import { Irql } from "../../platform/irql.js";

export type KIRQL = number;
export const PASSIVE_LEVEL: KIRQL = Irql.passive;
export const APC_LEVEL: KIRQL = Irql.apc;
export const DISPATCH_LEVEL: KIRQL = Irql.dispatch;
export const HIGH_LEVEL: KIRQL = Irql.high;
