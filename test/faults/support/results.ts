// One row of docs/reliability.md's table per scenario: printed as a TAP
// comment, and appended as JSON to $NETSERVICE_FAULTS_RESULTS when set, so a
// run's table can be written from what actually happened.
import { appendFileSync } from "node:fs";
import type { Test } from "tap";

export type ResultRow = {
  scenario: string;
  /** The churn (and anything else) going on while the fault lasted. */
  load: string;
  outcome: string;
  /** Seconds to exact convergence, measured from the moment named in `from`. */
  convergeSeconds: number | undefined;
  from: string;
};

export function recordResult(t: Test, row: ResultRow): void {
  t.comment(`RESULT ${JSON.stringify(row)}`);
  const file = process.env.NETSERVICE_FAULTS_RESULTS;
  if (file) appendFileSync(file, `${JSON.stringify({ ...row, at: new Date().toISOString() })}\n`);
}

export function seconds(value: number): number {
  return Math.round(value * 10) / 10;
}
