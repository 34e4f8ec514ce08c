// The results of a fault run ($NETSERVICE_FAULTS_RESULTS, one JSON row per
// scenario, see results.ts) -> the markdown table of docs/reliability.md.
//
//   NETSERVICE_FAULTS_RESULTS=/tmp/results.jsonl npm run test:faults
//   npx node test/faults/support/table.ts /tmp/results.jsonl   (npx: Node 24 from node_modules)
import { readFileSync } from "node:fs";
import type { ResultRow } from "./results.ts";

export function resultsTable(rows: readonly ResultRow[]): string {
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const lines = [
    "| Scenario | Load during the fault | Outcome | Converged (s) |",
    "|---|---|---|---|",
    ...rows.map((row) => {
      // A scenario with nothing to converge to (a name taken for good) records no time.
      const converged = row.convergeSeconds === undefined ? "n/a" : `${row.convergeSeconds} (after ${row.from})`;
      return `| ${cell(row.scenario)} | ${cell(row.load)} | ${cell(row.outcome)} | ${cell(converged)} |`;
    }),
  ];
  return `${lines.join("\n")}\n`;
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: node test/faults/support/table.ts RESULTS.jsonl\n");
    process.exit(2);
  }
  const rows = readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as ResultRow);
  process.stdout.write(resultsTable(rows));
}
