// Whatever happens to a test run, what it created on this machine goes away:
// on Ctrl-C or SIGTERM its own exit handler deletes its namespaces; after a
// SIGKILL the next run deletes them, by the names the dead run recorded, and
// never touches a run whose process is still alive.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import t from "tap";
import { RunScope } from "../../hack/realnet/run-scope.ts";
import { realNetworkingAvailable } from "../helpers/real-network.ts";

const runScopeModule = new URL("../../hack/realnet/run-scope.ts", import.meta.url).href;

if (await realNetworkingAvailable(t)) main();

function main() {
  t.test("namespaces deleted at the same time are all forgotten, and only they", async (t) => {
    const scope = await RunScope.create();
    t.teardown(() => scope.release());
    const names = [await scope.addNetns("a"), await scope.addNetns("b"), await scope.addNetns("c"), await scope.addNetns("d")];
    await Promise.all([scope.deleteNetns(names[1]!), scope.deleteNetns(names[2]!)]);
    t.same(scope.netnsList(), [names[0], names[3]], "the record holds exactly the two left");
    t.ok(existsSync(`/run/netns/${names[3]}`) && !existsSync(`/run/netns/${names[2]}`), "and so does the machine");
    await scope.deleteNetns(names[3]!);
    t.same(scope.netnsList(), [names[0]]);
  });

  t.test("a run killed with SIGKILL is released by the next run, by the recorded names", async (t) => {
    const child = await startRun();
    t.teardown(() => child.process.kill("SIGKILL"));
    t.ok(existsSync(`/run/netns/${child.netns}`), `the run created ${child.netns}`);
    child.process.kill("SIGKILL");
    await once(child.process, "exit");
    t.ok(existsSync(`/run/netns/${child.netns}`), "SIGKILL left its namespace behind");

    const released: string[] = [];
    const next = await RunScope.create((line) => released.push(line));
    await next.release();
    t.notOk(existsSync(`/run/netns/${child.netns}`), "the next run deleted it");
    t.notOk(existsSync(child.dir), "and the dead run's directory");
    t.comment(released.join("\n"));
  });

  t.test("a run that is still alive is left alone, and releases itself on SIGTERM", async (t) => {
    const child = await startRun();
    t.teardown(() => child.process.kill("SIGKILL"));
    const next = await RunScope.create();
    await next.release();
    t.ok(existsSync(`/run/netns/${child.netns}`), "a live run's namespace survives another run's start");
    child.process.kill("SIGTERM");
    await once(child.process, "exit", { signal: AbortSignal.timeout(20_000) });
    t.notOk(existsSync(`/run/netns/${child.netns}`), "SIGTERM: its exit handler deleted its namespace");
    t.notOk(existsSync(child.dir), "and its directory");
  });
}

/** A separate Node process that starts a run with one namespace and waits. */
async function startRun(): Promise<{ process: ChildProcess; netns: string; dir: string }> {
  const script = [
    `const { RunScope } = await import(${JSON.stringify(runScopeModule)});`,
    "const scope = await RunScope.create();",
    'await scope.addNetns("victim");',
    "console.log(JSON.stringify({ netns: scope.netnsList()[0], dir: scope.dir }));",
    "setInterval(() => undefined, 60_000);",
  ].join("\n");
  // A plain Node process: the test runner injects its own modules into child
  // Node processes through NODE_OPTIONS, and they handle SIGTERM themselves.
  const child = spawn("env", ["-u", "NODE_OPTIONS", process.execPath, "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
  return { process: child, ...(JSON.parse(line) as { netns: string; dir: string }) };
}
