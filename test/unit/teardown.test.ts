// Teardowns end: a step that hangs is named with what it waits for, the
// steps after it still run, and the whole ends with an error naming it. Time
// is a ManualClock: the bound is what the clock says, not what this machine
// manages to do in some milliseconds.
import t from "tap";
import { ManualClock } from "../../common/kube/clock.ts";
import { runTeardown, TeardownError, type TeardownStep } from "../../hack/teardown.ts";

/** A step the test finishes by hand. */
function manualStep(name: string, timeoutMs: number, waitingFor?: () => string[]) {
  let finish: () => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  let started = false;
  const step: TeardownStep = {
    name,
    timeoutMs,
    run: () => {
      started = true;
      return new Promise<void>((resolve, reject) => {
        finish = resolve;
        fail = reject;
      });
    },
    ...(waitingFor ? { waitingFor } : {}),
  };
  return { step, finish: () => finish(), fail: (error: Error) => fail(error), started: () => started };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

t.test("steps run one after another, each only once the one before has finished", async (t) => {
  const clock = new ManualClock();
  const first = manualStep("first", 1000);
  const second = manualStep("second", 1000);
  const done = runTeardown([first.step, second.step], { clock, report: () => undefined });
  await flush();
  t.ok(first.started(), "the first step runs");
  t.notOk(second.started(), "the second waits for it");
  first.finish();
  await flush();
  t.ok(second.started(), "then the second runs");
  second.finish();
  await done;
  t.equal(clock.pending, 0, "no timer is left behind");
});

t.test("a step that overruns its bound is reported with what it waits for, and the rest still run", async (t) => {
  const clock = new ManualClock();
  const lines: string[] = [];
  const hung = manualStep("pod sandboxes (CNI DEL)", 120_000, () => ["CNI DEL of default/utils-2 (multus, eth0), 118 s"]);
  const after = manualStep("control plane", 60_000);
  const done = runTeardown([hung.step, after.step], { clock, report: (line) => lines.push(line) });
  await flush();
  clock.advance(119_999);
  await flush();
  t.notOk(after.started(), "within its bound the step is waited for");
  clock.advance(1);
  await flush();
  t.ok(after.started(), "at its bound the teardown carries on");
  t.match(lines[0], /pod sandboxes \(CNI DEL\) did not finish within 120 s; waiting for: CNI DEL of default\/utils-2 \(multus, eth0\), 118 s; carrying on with control plane/);
  after.finish();
  const error = await done.then(() => undefined, (e: unknown) => e);
  t.type(error, TeardownError, "the teardown ends with an error");
  t.match((error as TeardownError).message, /pod sandboxes \(CNI DEL\) did not finish within 120 s/, "naming the step that hung");
  t.same((error as TeardownError).failures.map((f) => [f.step, f.kind]), [["pod sandboxes (CNI DEL)", "overran"]]);

  clock.advance(5000);
  hung.finish();
  await flush();
  t.match(lines[1], /pod sandboxes \(CNI DEL\) finished late, after 125 s/, "a late finish is said too");
});

t.test("a failed step does not stop the ones after it; every failure is in the error", async (t) => {
  const clock = new ManualClock();
  const broken = manualStep("DNS (CoreDNS)", 10_000);
  const throwsAtOnce: TeardownStep = { name: "aggregator", timeoutMs: 10_000, run: () => { throw new Error("not a promise"); } };
  const last = manualStep("control plane", 60_000);
  const lines: string[] = [];
  const done = runTeardown([broken.step, throwsAtOnce, last.step], { clock, report: (line) => lines.push(line) });
  await flush();
  broken.fail(new Error("coredns: kill EPERM"));
  await flush();
  t.ok(last.started(), "the last step still runs");
  last.finish();
  const error = (await done.then(() => undefined, (e: unknown) => e)) as TeardownError;
  t.same(error.failures.map((f) => f.message), ["DNS (CoreDNS) failed: coredns: kill EPERM", "aggregator failed: not a promise"]);
  t.same(lines, ["stopping: DNS (CoreDNS) failed: coredns: kill EPERM", "stopping: aggregator failed: not a promise"], "each failure is said as it happens");
});

t.test("a waitingFor that throws still lets the teardown report and go on", async (t) => {
  const clock = new ManualClock();
  const lines: string[] = [];
  const hung = manualStep("fake kubelet", 1000, () => {
    throw new Error("state gone");
  });
  const done = runTeardown([hung.step], { clock, report: (line) => lines.push(line) });
  await flush();
  clock.advance(1000);
  await t.rejects(done, TeardownError);
  t.match(lines[0], /fake kubelet did not finish within 1\.0 s; waiting for: \(could not tell: state gone\); giving up on it/);
});
