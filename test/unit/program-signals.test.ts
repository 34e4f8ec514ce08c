// The programs' life cycle under signals, in a real child process: the
// first SIGTERM starts a clean stop, and a second one ends the process at
// once even when that stop would never finish (a kubelet sending SIGTERM
// twice, an operator's second Ctrl-C).
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import t from "tap";

const programModule = new URL("../../common/program.ts", import.meta.url).href;
const logModule = new URL("../../common/log.ts", import.meta.url).href;

/** A program whose controller starts at once and whose stop never finishes (or finishes at once). */
function startProgram(stopHangs: boolean): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const script = [
    `const { runUntilSignalled } = await import(${JSON.stringify(programModule)});`,
    `const { createRootLogger } = await import(${JSON.stringify(logModule)});`,
    'const { Registry } = await import("prom-client");',
    "const log = createRootLogger({ destination: process.stdout });",
    // The timer stands for the controller's watches, which keep a real program alive.
    "let watches;",
    `const stop = ${stopHangs ? "() => new Promise(() => undefined)" : "async () => clearInterval(watches)"};`,
    "const controller = { ready: true, start: async () => { watches = setInterval(() => undefined, 60_000); }, stop };",
    "process.exitCode = await runUntilSignalled({ programName: 'signals-test', log, clients: { close: async () => undefined },",
    "  metricsPort: 0, registry: new Registry(), controller, startingFields: {}, onStarted: () => log.info('started') });",
  ].join("\n");
  // A plain Node process: the test runner's NODE_OPTIONS bring signal handlers of their own.
  const child = spawn("env", ["-u", "NODE_OPTIONS", process.execPath, "--input-type=module", "-e", script], {
    cwd: new URL("../..", import.meta.url).pathname,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
}

async function waitForMessage(lines: AsyncIterableIterator<string>, message: string): Promise<Record<string, unknown>> {
  for (;;) {
    const next = await lines.next();
    if (next.done) throw new Error(`the program ended before logging "${message}"`);
    const entry = JSON.parse(next.value) as Record<string, unknown>;
    if (entry.msg === message) return entry;
  }
}

t.test("a second SIGTERM ends the program at once while its stop hangs", async (t) => {
  const { child, lines } = startProgram(true);
  t.teardown(() => void child.kill("SIGKILL"));
  await waitForMessage(lines, "started");
  child.kill("SIGTERM");
  await waitForMessage(lines, "stopping");
  t.equal(child.exitCode, null, "after the first signal the program is still stopping (its stop never finishes)");
  // The bound only turns a hang into a failure; a working program exits in milliseconds.
  const exited = once(child, "exit", { signal: AbortSignal.timeout(60_000) });
  child.kill("SIGTERM");
  const warning = await waitForMessage(lines, "second signal: exiting without finishing the stop");
  t.equal(warning.signal, "SIGTERM");
  const [code] = (await exited) as [number | null];
  t.equal(code, 130, "it exits with 130");
});

t.test("one SIGTERM stops the program cleanly with exit code 0", async (t) => {
  const { child, lines } = startProgram(false);
  t.teardown(() => void child.kill("SIGKILL"));
  await waitForMessage(lines, "started");
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const [code] = (await exited) as [number | null];
  t.equal(code, 0);
});
