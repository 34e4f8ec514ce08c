// What loading modules costs in memory, without running anything: imports
// the modules named on the command line (package names, or files relative to
// the repository) in a fresh process and prints its resident set and heap as
// one JSON line. A program's main file stands for the modules it imports (its
// top-level runtime imports, read from its source), since importing main
// itself would start the program.
//
//   node hack/mem/imports.ts                          bare Node, for reference
//   node hack/mem/imports.ts @kubernetes/client-node
//   node hack/mem/imports.ts node-agent/main.ts       the agent's module graph
//   node --expose-gc hack/mem/imports.ts zod          heap figures after a full GC
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const repoRoot = path.resolve(import.meta.dirname, "..", "..");

for (const spec of process.argv.slice(2)) {
  for (const target of importsOf(spec)) await import(target);
}
(globalThis as { gc?: () => void }).gc?.();
process.stdout.write(`${JSON.stringify({ modules: process.argv.slice(2), ...memoryFigures() })}\n`);

/** What to import for a command-line argument: a package as is, a file by URL, a main file's own imports instead of itself. */
function importsOf(spec: string): string[] {
  if (!spec.endsWith(".ts") && !spec.endsWith(".js")) return [spec];
  const file = path.resolve(repoRoot, spec);
  if (path.basename(file) !== "main.ts") return [pathToFileURL(file).href];
  const source = readFileSync(file, "utf8");
  const specifiers = [...source.matchAll(/^import (?!type )[^;]*?from "([^"]+)"/gms)].map((m) => m[1]!);
  return specifiers
    .filter((s) => !s.endsWith(".json"))
    .map((s) => (s.startsWith(".") ? pathToFileURL(path.resolve(path.dirname(file), s)).href : s));
}

/** MB, rounded: VmHWM (peak resident), VmRSS (resident now), V8's heap and external memory. */
export function memoryFigures(): Record<string, number> {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  const mb = (bytes: number) => Math.round(bytes / 1048576);
  const usage = process.memoryUsage();
  return {
    peakRssMb: Math.round(kb("VmHWM") / 1024),
    rssMb: Math.round(kb("VmRSS") / 1024),
    heapUsedMb: mb(usage.heapUsed),
    heapTotalMb: mb(usage.heapTotal),
    externalMb: mb(usage.external),
  };
}
