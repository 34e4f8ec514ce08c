// Stopping things in order, where no step may hold up the rest. Each step
// has a bound; a step that overruns it is reported with what it is waiting
// for (a process to exit, the CNI DEL of one pod, ...), left to finish in the
// background, and the teardown carries on with the next step. A test run
// therefore ends with a clear failure that names the step, never with a hang
// that something else kills, or a crash.
//
//   await runTeardown([
//     { name: "DNS", timeoutMs: 10_000, run: () => dns.stop(), waitingFor: () => [`coredns pid ${pid} to exit`] },
//     { name: "control plane", timeoutMs: 60_000, run: () => plane.stop() },
//   ], { report: (line) => t.comment(line) });
//   // throws a TeardownError naming every step that failed or overran, after all of them ran
import { type Clock, realClock } from "../common/kube/clock.ts";
import { describe } from "../common/program.ts";

export type TeardownStep = {
  /** What the messages call the step: "DNS", "agents", "pod sandboxes", "control plane". */
  name: string;
  run: () => Promise<void>;
  /** How long the step may take before the teardown calls it hung and moves on. */
  timeoutMs: number;
  /** What the step still waits for, asked when it overruns (e.g. "CNI DEL of default/utils-x, 95 s"). */
  waitingFor?: () => string[];
};

export type TeardownOptions = {
  clock?: Clock;
  /** Where an overrun, and a late finish, are said; default stderr. */
  report?: (line: string) => void;
};

/** Every step that failed or overran, in order; `message` names them all. */
export class TeardownError extends AggregateError {
  readonly failures: readonly StepFailure[];
  constructor(failures: StepFailure[]) {
    super(failures.map((f) => f.error), `teardown incomplete: ${failures.map((f) => f.message).join("; ")}`);
    this.name = "TeardownError";
    this.failures = failures;
  }
}

export type StepFailure = { step: string; kind: "failed" | "overran"; message: string; error: unknown };

/** Runs the steps one after another, each within its bound; throws a TeardownError once all have run if any failed or overran. */
export async function runTeardown(steps: readonly TeardownStep[], options: TeardownOptions = {}): Promise<void> {
  const clock = options.clock ?? realClock;
  const report = options.report ?? ((line: string) => process.stderr.write(`[netservice] ${line}\n`));
  const failures: StepFailure[] = [];
  for (const [index, step] of steps.entries()) {
    const outcome = await runBounded(step, clock);
    if (outcome.kind === "done") continue;
    if (outcome.kind === "failed") {
      const message = `${step.name} failed: ${describe(outcome.error)}`;
      // Said here too: a test runner may print the error thrown at the end apart from the file's own output.
      report(`stopping: ${message}`);
      failures.push({ step: step.name, kind: "failed", message, error: outcome.error });
      continue;
    }
    const waiting = safeWaitingFor(step);
    const next = steps[index + 1]?.name;
    const message = `${step.name} did not finish within ${seconds(step.timeoutMs)}` + (waiting.length > 0 ? `; waiting for: ${waiting.join(", ")}` : "");
    // The process's memory, so that a hang that comes with growth shows both.
    report(`stopping: ${message}; ${next ? `carrying on with ${next}` : "giving up on it"} (${memory()})`);
    failures.push({ step: step.name, kind: "overran", message, error: new Error(message) });
    const startedLate = clock.now() - step.timeoutMs;
    outcome.late.then(
      () => report(`stopping: ${step.name} finished late, after ${seconds(clock.now() - startedLate)}`),
      (error: unknown) => report(`stopping: ${step.name} failed late, after ${seconds(clock.now() - startedLate)}: ${describe(error)}`),
    );
  }
  if (failures.length > 0) throw new TeardownError(failures);
}

type Outcome = { kind: "done" } | { kind: "failed"; error: unknown } | { kind: "overran"; late: Promise<void> };

function runBounded(step: TeardownStep, clock: Clock): Promise<Outcome> {
  let running: Promise<void>;
  try {
    running = step.run();
  } catch (error) {
    return Promise.resolve({ kind: "failed", error });
  }
  return new Promise((resolve) => {
    const timer = clock.setTimer(() => resolve({ kind: "overran", late: running }), step.timeoutMs);
    running.then(
      () => {
        timer.cancel();
        resolve({ kind: "done" });
      },
      (error: unknown) => {
        timer.cancel();
        resolve({ kind: "failed", error });
      },
    );
  });
}

function safeWaitingFor(step: TeardownStep): string[] {
  try {
    return step.waitingFor?.() ?? [];
  } catch (error) {
    return [`(could not tell: ${describe(error)})`];
  }
}

function memory(): string {
  const { rss, heapUsed, external } = process.memoryUsage();
  const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
  return `this process: rss ${mb(rss)}, heap ${mb(heapUsed)}, external ${mb(external)}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
