/**
 * The contract of a runnable sample (`npm run sample -- NAME`): a file `samples/NAME-sample.ts`
 * whose default export is a SampleDefinition. Its report says what was measured and checked;
 * `ok` is true only when every check held — computed, never written in.
 */
export interface SampleCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What was observed, in a few words ("64 KiB intact", "faulted at 0x1000 reason 5"). */
  readonly detail: string;
}

export interface SampleReport {
  readonly name: string;
  readonly checks: readonly SampleCheck[];
  /** Measured figures: counts, costs, times (virtual ns). */
  readonly figures: Readonly<Record<string, number | string | boolean>>;
  /** Readable explanation lines for the text report. */
  readonly lines: readonly string[];
}

export interface SampleOptions {
  readonly seed: number;
  readonly json: boolean;
}

export interface SampleDefinition {
  readonly name: string;
  /** One line: what the sample shows. */
  readonly description: string;
  run(options: SampleOptions): Promise<SampleReport> | SampleReport;
}

/** `ok` of a report: every check held (and there was at least one). */
export function sampleOk(report: SampleReport): boolean {
  return report.checks.length > 0 && report.checks.every((check) => check.ok);
}
