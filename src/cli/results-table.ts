/**
 * The demonstration's table: one row per scenario with the columns a reader compares across modes
 * (outcome, bytes, bounces, faults, IOTLB misses), and the row's one-line explanation last.
 */
import { formatBytes } from "../../samples/explain.js";
import type { ScenarioResult } from "../../samples/scenario.js";

interface Column {
  readonly title: string;
  readonly align: "left" | "right";
  readonly cell: (result: ScenarioResult) => string;
}

const COLUMNS: readonly Column[] = [
  { title: "driver", align: "left", cell: (r) => r.driver },
  { title: "mode", align: "left", cell: (r) => r.mode },
  { title: "outcome", align: "left", cell: (r) => r.outcome },
  { title: "bytes", align: "right", cell: (r) => formatBytes(r.bytes) },
  { title: "bounces", align: "right", cell: (r) => String(r.bounces) },
  { title: "faults", align: "right", cell: (r) => String(r.faults) },
  { title: "IOTLB misses", align: "right", cell: (r) => String(r.iotlbMisses) },
  { title: "what happened", align: "left", cell: (r) => r.explanation },
];

export function formatResultsTable(results: readonly ScenarioResult[]): string {
  const rows = results.map((result) => COLUMNS.map((column) => column.cell(result)));
  const widths = COLUMNS.map((column, i) =>
    Math.max(column.title.length, ...rows.map((row) => row[i]!.length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        if (i === cells.length - 1) return cell;
        return COLUMNS[i]!.align === "right" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join("  ")
      .trimEnd();
  const out = [
    line(COLUMNS.map((c) => c.title)),
    line(widths.map((w, i) => "-".repeat(i === widths.length - 1 ? 13 : w))),
  ];
  let previous: string | undefined;
  for (const [i, row] of rows.entries()) {
    if (previous !== undefined && previous !== results[i]!.driver) out.push("");
    previous = results[i]!.driver;
    out.push(line(row));
  }
  return out.join("\n");
}
