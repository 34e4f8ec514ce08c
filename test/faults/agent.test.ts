// The node agents under faults, with pods churning on every node: an agent
// killed and restarted; an agent whose process hangs while its node keeps
// running (held as last reported, then not ready once its heartbeat is
// stale); an agent gone for good with its Node deleted.
import { setTimeout as delay } from "node:timers/promises";
import t from "tap";
import { eventually, expect } from "../helpers/eventually.ts";
import type { EndpointsJson, SliceJson, StaleNodes } from "./support/checker.ts";
import { assertCompared, assertHoldsExact, churnNamespace, FaultEnvironment } from "./support/environment.ts";
import type { Program } from "./support/programs.ts";
import { recordResult, seconds } from "./support/results.ts";

const env = await FaultEnvironment.start(t);
const started = await env.startPrograms();
const { aggregator } = started;
const agents = new Map<string, Program>(env.nodes.map((node, i) => [node, started.agents[i] as Program]));
await env.populateAndConverge(24);
const agentOf = (node: string) => agents.get(node) as Program;
const [killedNode = "", hungNode = "", goneNode = ""] = env.nodes;

t.test("an agent killed with SIGKILL mid-churn: its node's endpoints stay as last reported while it is down, then it republishes", async (t) => {
  // Churn everywhere, then a moment of quiet in which what each agent last reported is known exactly ...
  const warmUp = env.churn();
  await warmUp.start();
  await delay(4000);
  await warmUp.stop();
  // Graceful deletions end within 3 s; then the killed node's pods stay as they are until the kill.
  await delay(3500);
  await env.checker.waitForConvergence({ timeoutMs: 60_000 });
  const frozen = await env.checker.expected();
  // ... then churn on the other nodes, the agent killed in the middle of it, and its own pods churned after the kill.
  let killed = false;
  const churn = env.churn({ nodes: () => (killed ? env.nodes : env.nodes.filter((node) => node !== killedNode)) });
  await churn.start();
  await delay(2000);
  await agentOf(killedNode).kill("SIGKILL");
  const killedAt = Date.now();
  killed = true;
  await delay(8000);
  await churn.stop();
  // Down for less than the heartbeat timeout (40 s): every other node exact, the killed node's pods as last reported.
  const stale = { nodes: [killedNode], as: frozen };
  const held = await env.checker.waitForConvergence({ staleNodes: stale, timeoutMs: 20_000 });
  assertCompared(t, held.compared, "while the agent was down, the check");
  const behind = staleAddresses(frozen, await env.checker.expected(), killedNode);
  t.ok(behind > 0, `the killed node's pods changed while it was down (${behind} addresses differ from what it last reported)`);
  const stillHeld = await env.checker.holdsExact({ seconds: Math.max(1, (killedAt + 15_000 - Date.now()) / 1000), staleNodes: stale, catchUpMs: 0 });
  t.ok(
    stillHeld.differences.length === 0 && stillHeld.exactChecks >= 1,
    stillHeld.differences.length > 0
      ? `while the agent was down, not as last reported:\n  ${stillHeld.differences.slice(0, 20).join("\n  ")}`
      : `held as last reported until the restart, ${seconds((Date.now() - killedAt) / 1000)} s after the kill (${stillHeld.exactChecks} exact checks)`,
  );
  // While it starts: what is published is either what it last reported or the truth of now, nothing in between.
  const restartedAt = Date.now();
  const watching = watchTransition(stale);
  await agentOf(killedNode).start();
  const readyAfter = seconds((Date.now() - restartedAt) / 1000);
  const republished = await env.checker.waitForConvergence({ since: restartedAt, timeoutMs: 120_000 });
  const transition = await watching.stop();
  t.ok(
    transition.neither.length === 0 && transition.looks >= 3,
    transition.neither.length > 0
      ? `while the agent restarted, published neither as last reported nor as now for 2 s:\n  ${transition.neither.slice(0, 20).join("\n  ")}`
      : `while the agent restarted: ${transition.looks} checks, each as last reported (${transition.held}) or exact (${transition.exact})`,
  );
  // And the restarted agent keeps up with churn.
  const after = env.churn();
  await after.start();
  await delay(5000);
  await after.stop();
  const converged = await env.checker.waitForConvergence({ since: Date.now(), timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  recordResult(t, {
    scenario: `agent of ${killedNode} SIGKILLed mid-churn (its own pods quiet until the kill, churned after it), down 15 s, restarted`,
    load: `${churn.describe()}; then ${after.describe()} after the restart`,
    outcome:
      `its node's endpoints stayed exactly as last reported while it was down (${behind} addresses behind its pods, checked for ` +
      `${stillHeld.afterSeconds} s); restarted agent ready in ${readyAfter} s and republished in ${republished.seconds} s, every check ` +
      `meanwhile either as last reported or exact (${transition.looks}); exact convergence after more churn`,
    convergeSeconds: converged.seconds,
    from: "churn stopped (5 s after the restarted agent republished)",
  });
});

t.test("an agent that hangs while its node keeps running: its pods stay as last reported, then not ready once its heartbeat is stale", async (t) => {
  const frozen = await env.checker.expected();
  const hung = agentOf(hungNode);
  hung.pause();
  t.teardown(() => hung.resume());
  const pausedAt = Date.now();
  const churn = env.churn();
  await churn.start();
  await delay(15_000);
  await churn.stop();
  const stale = { nodes: [hungNode], as: frozen };
  // Within the aggregator's heartbeat timeout (40 s): held exactly as when it hung.
  const held = await env.checker.waitForConvergence({ staleNodes: stale, timeoutMs: 20_000 });
  t.ok(Date.now() - pausedAt < 40_000, "checked within the heartbeat timeout");
  t.pass("every other node's pods are exact; the hung node's pods are exactly as when it hung");
  assertCompared(t, held.compared, "while the agent hung, the check");
  const now = await env.checker.expected();
  const behind = staleAddresses(frozen, now, hungNode);
  t.ok(behind > 0, `the hung node's published addresses differ from its pods' now (${behind} addresses)`);
  // Past it: the same addresses, published not serving.
  const unserved = await env.checker.waitForConvergence({ staleNodes: { ...stale, notServing: true }, since: pausedAt, timeoutMs: 60_000, intervalMs: 250 });
  t.pass(`the hung node's endpoints were published not ready ${unserved.seconds} s after it hung`);
  const stillUnserved = await env.checker.holdsExact({ seconds: 3, staleNodes: { ...stale, notServing: true }, catchUpMs: 0 });
  t.same(stillUnserved.differences, [], `and stayed so, NodesHealthy False (${stillUnserved.exactChecks} exact checks in 3 s)`);
  const hungFor = seconds((Date.now() - pausedAt) / 1000);
  const resumedAt = Date.now();
  hung.resume();
  const converged = await env.checker.waitForConvergence({ since: resumedAt, timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  recordResult(t, {
    scenario: `agent of ${hungNode} hung (SIGSTOP) for ${hungFor} s, node running`,
    load: churn.describe(),
    outcome:
      `other nodes converged exactly (${held.seconds} s after the churn stopped); the hung node's endpoints stayed exactly ` +
      `as when it hung (${behind} addresses stale, dead pods included) until its heartbeat went stale (40 s), then were published ` +
      `not ready (${unserved.seconds} s after the hang, polled every 0.25 s), until it resumed`,
    convergeSeconds: converged.seconds,
    from: "SIGCONT",
  });
});

t.test("an agent gone for good with its Node deleted: its endpoints disappear, the others stay", async (t) => {
  const liveNodes = env.nodes.filter((node) => node !== goneNode);
  const churn = env.churn({ nodes: () => liveNodes });
  await churn.start();
  await delay(5000);
  await agentOf(goneNode).kill("SIGKILL");
  const deletedAt = Date.now();
  await env.admin.http.request({ method: "DELETE", path: `/api/v1/nodes/${goneNode}` });
  const gone = await eventually(async () => {
    const onNode = await publishedOn(goneNode);
    expect(onNode === 0, `${onNode} addresses on ${goneNode} still published`);
    return seconds((Date.now() - deletedAt) / 1000);
  }, { timeoutMs: 60_000, intervalMs: 250 });
  await delay(5000);
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  t.pass(`${goneNode}'s endpoints gone ${gone} s after the Node was deleted`);
  recordResult(t, {
    scenario: `agent of ${goneNode} killed for good and its Node deleted`,
    load: churn.describe(),
    outcome: `every address on ${goneNode} unpublished ${gone} s after the Node's deletion (the garbage collector deletes its report and heartbeat); other nodes exact`,
    convergeSeconds: converged.seconds,
    from: "churn stopped",
  });
});

t.test("no program crashed", async (t) => {
  for (const program of [aggregator, agentOf(killedNode), agentOf(hungNode)]) {
    t.ok(program.running, `${program.name} runs`);
  }
  t.equal(aggregator.starts, 1, "the aggregator never restarted");
});

/**
 * Checks every 250 ms until stop(): each look must match the truth with
 * `stale` held (published not ready once the heartbeat timeout has passed,
 * if the restart takes that long) or the truth of now. A republish is
 * several writes (Endpoints, each slice, the status, whose counts are
 * rewritten at most once a second), so a look in between may match neither;
 * only a mix that lasts 2 s fails. stop() lets it take at least minLooks
 * settled looks first (for up to 30 s more): a restart that converges within
 * one or two looks is checked as often as a slow one, and the looks after
 * convergence check that it stays exact.
 */
function watchTransition(stale: StaleNodes, minLooks = 3): { stop(): Promise<{ looks: number; held: number; exact: number; neither: string[] }> } {
  let stopDeadline: number | undefined;
  let mixedSince: number | undefined;
  const counts = { looks: 0, held: 0, exact: 0, neither: [] as string[] };
  const done = () => stopDeadline !== undefined && (counts.looks >= minLooks || Date.now() >= stopDeadline);
  const loop = (async () => {
    while (!done() && counts.neither.length === 0) {
      const [asHeld, asUnserved, asNow] = await env.checker.checkAgainst([stale, { ...stale, notServing: true }, undefined]);
      if (asHeld && asUnserved && asNow && !asHeld.moving) {
        counts.looks++;
        const held = asHeld.differences.length === 0 || asUnserved.differences.length === 0;
        if (held) counts.held++;
        else if (asNow.differences.length === 0) counts.exact++;
        mixedSince = !held && asNow.differences.length > 0 ? (mixedSince ?? Date.now()) : undefined;
        if (mixedSince !== undefined && Date.now() - mixedSince >= 2000) {
          counts.neither = [...asHeld.differences.map((d) => `held: ${d}`), ...asNow.differences.map((d) => `now: ${d}`)];
        }
      }
      await delay(250);
    }
  })();
  return {
    async stop() {
      stopDeadline = Date.now() + 30_000;
      await loop;
      return counts;
    },
  };
}

/** Addresses of pods on `node` that are published differently from the truth now. */
function staleAddresses(then: Awaited<ReturnType<typeof env.checker.expected>>, now: Awaited<ReturnType<typeof env.checker.expected>>, node: string): number {
  let count = 0;
  for (const [key, before] of then) {
    const after = now.get(key);
    for (const [id, address] of before.addresses) {
      if (address.node !== node) continue;
      const current = after?.addresses.get(id);
      if (!current || current.ready !== address.ready || current.serving !== address.serving || current.terminating !== address.terminating) count++;
    }
    for (const [id, address] of after?.addresses ?? []) if (address.node === node && !before.addresses.has(id)) count++;
  }
  return count;
}

/** How many addresses our Endpoints and EndpointSlices publish on `node`. */
async function publishedOn(node: string): Promise<number> {
  const endpoints = await env.admin.http.request<{ items: EndpointsJson[] }>({ method: "GET", path: `/api/v1/namespaces/${churnNamespace}/endpoints` });
  const slices = await env.admin.http.request<{ items: SliceJson[] }>({
    method: "GET",
    path: `/apis/discovery.k8s.io/v1/namespaces/${churnNamespace}/endpointslices`,
    query: { labelSelector: "endpointslice.kubernetes.io/managed-by=netservice-aggregator.svcctl.metaswitch.com" },
  });
  const inEndpoints = endpoints.items
    .filter((e) => e.metadata.labels?.["endpointslice.kubernetes.io/skip-mirror"] === "true")
    .flatMap((e) => e.subsets ?? [])
    .flatMap((s) => [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])])
    .filter((a) => a.nodeName === node).length;
  const inSlices = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.nodeName === node).length;
  return inEndpoints + inSlices;
}
