import "reflect-metadata";
import { run } from "./remap-bench.js";
console.log(await run());
