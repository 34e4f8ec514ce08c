// Prints the failures of a suite's TAP log, then the runner's summary again,
// so CI's tail shows what failed and still ends with the summary.
// Usage: node hack/ci/failures.ts LOG SUITE
import { readFileSync } from "node:fs";
import { formatFailures, tapFailures, tapSummary } from "./tap-failures.ts";

const [logPath, suite = "the suite"] = process.argv.slice(2);
if (!logPath) {
  console.error("usage: node hack/ci/failures.ts LOG SUITE");
  process.exit(2);
}
const log = readFileSync(logPath, "utf8");
const failures = tapFailures(log);
console.log(failures.length > 0
  ? `\n==> ${suite} failed: ${failures.length} failing test point(s) in its TAP output:`
  : `\n==> ${suite} failed with no failing test point in its TAP output: see the lines above`);
for (const line of formatFailures(failures)) console.log(line);
const summary = tapSummary(log);
if (summary.length > 0) console.log(`\n${summary.join("\n")}`);
