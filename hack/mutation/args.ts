// The command line of npm run test:mutation (hack/mutation/main.ts).
//
//   parseMutationArgs(["--preset", "ci"]) -> { preset: "ci", sample: 6, seed: undefined, files: undefined, incremental: false, concurrency: 2, tests: undefined, help: false }
import { parseArgs } from "node:util";

/** Files in the ci preset's sample: about a quarter of the pure code. */
const ciSample = 6;
/** Test runners at once: the two cores of the machines we run on. */
const defaultConcurrency = 2;

export const usage = `npm run test:mutation -- [options]

  --preset full    every pure file (the default)
  --preset ci      a sample of ${ciSample} files, chosen by the commit: another sample each commit
  --sample N       a sample of N files instead
  --seed TEXT      choose the sample by TEXT instead of the commit (the same TEXT, the same files)
  --files A,B      exactly these files (paths as in hack/mutation/scope.ts)
  --incremental    reuse the last run's results where neither the mutated code
                   nor the test files that covered it changed (kept in
                   reports/mutation/incremental.json; helpers such as
                   test/unit/objects.ts are not compared: drop it after changing one)
  --tests A,B      run only these unit test files (paths as in
                   hack/mutation/scope.ts), not every one that reaches the
                   mutated code: much faster, and a lower bound of the score
  --concurrency N  test runners at once (default ${defaultConcurrency}); 1 on a machine shared
                   with other builds

The HTML report goes to reports/mutation/index.html. Exits 1 when fewer than
80% of the mutants are killed. See docs/testing.md.
`;

export class MutationArgsError extends Error {}

export type MutationArgs = {
  preset: "full" | "ci";
  /** How many files to sample; undefined: all. */
  sample: number | undefined;
  seed: string | undefined;
  files: string[] | undefined;
  incremental: boolean;
  /** Stryker's test runners at once. */
  concurrency: number;
  /** Only these test files; undefined: every unit test file of the pure code. */
  tests: string[] | undefined;
  help: boolean;
};

export function parseMutationArgs(argv: string[]): MutationArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        preset: { type: "string", default: "full" },
        sample: { type: "string" },
        seed: { type: "string" },
        files: { type: "string" },
        incremental: { type: "boolean", default: false },
        concurrency: { type: "string" },
        tests: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new MutationArgsError(err instanceof Error ? err.message : String(err));
  }
  const preset = values.preset;
  if (preset !== "full" && preset !== "ci") throw new MutationArgsError(`--preset must be full or ci, got "${preset}"`);
  let sample: number | undefined = preset === "ci" ? ciSample : undefined;
  if (values.sample !== undefined) {
    sample = /^\d+$/.test(values.sample) ? Number(values.sample) : Number.NaN;
    if (!(sample >= 1)) throw new MutationArgsError(`--sample must be a whole number of files, at least 1, got "${values.sample}"`);
  }
  let concurrency = defaultConcurrency;
  if (values.concurrency !== undefined) {
    concurrency = /^\d+$/.test(values.concurrency) ? Number(values.concurrency) : Number.NaN;
    if (!(concurrency >= 1)) throw new MutationArgsError(`--concurrency must be a whole number of runners, at least 1, got "${values.concurrency}"`);
  }
  const files = values.files?.split(",").filter((file) => file !== "");
  const tests = values.tests?.split(",").filter((file) => file !== "");
  return { preset, sample, seed: values.seed, files, incremental: values.incremental, concurrency, tests, help: values.help };
}
