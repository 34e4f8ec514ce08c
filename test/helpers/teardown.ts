// A test file's teardowns, each with a bound (hack/teardown.ts): one that
// hangs is named in the output with what it waits for, fails the file, and
// the teardowns after it still run, instead of the file hanging until the
// runner kills it.
//
//   boundedTeardown(t, { name: "control plane", timeoutMs: 60_000, run: () => plane.stop() });
import type { Test } from "tap";
import { runTeardown, type TeardownStep } from "../../hack/teardown.ts";

/** Registers steps as one teardown of t (tap runs teardowns last registered, first run). */
export function boundedTeardown(t: Test, ...steps: TeardownStep[]): void {
  t.teardown(() => runTeardown(steps, { report: (line) => t.comment(line) }));
}
