// The node agents under faults, with pods churning on every node: an agent
// killed and restarted; an agent whose process hangs while its node keeps
// running (held as last reported, then not ready once its heartbeat is
// stale); an agent gone for good with its Node deleted.
import { setTimeout as delay } from "node:timers/promises";
import t from "tap";
import { eventually, expect } from "../helpers/eventually.ts";
import type { EndpointsJson, SliceJson } from "./support/checker.ts";
import { churnNamespace, FaultEnvironment } from "./support/environment.ts";
import type { Program } from "./support/programs.ts";
import { recordResult, seconds } from "./support/results.ts";

const env = await FaultEnvironment.start(t);
const started = await env.startPrograms();
const { aggregator } = started;
const agents = new Map<string, Program>(env.nodes.map((node, i) => [node, started.agents[i] as Program]));
await env.populateAndConverge(24);
const agentOf = (node: string) => agents.get(node) as Program;
const [killedNode = "", hungNode = "", goneNode = ""] = env.nodes;

t.test("an agent killed with SIGKILL mid-churn and restarted converges exactly", async (t) => {
  const churn = env.churn();
  await churn.start();
  await delay(5000);
  await agentOf(killedNode).kill("SIGKILL");
  await delay(15_000);
  const restartedAt = Date.now();
  await agentOf(killedNode).start();
  const readyAfter = seconds((Date.now() - restartedAt) / 1000);
  await delay(5000);
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ since: Date.now(), timeoutMs: 120_000 });
  t.pass(`converged: ${converged.netServices} NetServices, ${converged.addresses} addresses`);
  recordResult(t, {
    scenario: `agent of ${killedNode} SIGKILLed mid-churn, down 15 s, restarted`,
    load: churn.describe(),
    outcome: `its node's endpoints stayed as last reported while it was down; restarted agent ready in ${readyAfter} s and republished; exact convergence`,
    convergeSeconds: converged.seconds,
    from: "churn stopped (5 s after the restart)",
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
  const now = await env.checker.expected();
  const behind = staleAddresses(frozen, now, hungNode);
  t.ok(behind > 0, `the hung node's published addresses differ from its pods' now (${behind} addresses)`);
  // Past it: the same addresses, published not serving.
  const unserved = await env.checker.waitForConvergence({ staleNodes: { ...stale, notServing: true }, since: pausedAt, timeoutMs: 60_000, intervalMs: 250 });
  t.pass(`the hung node's endpoints were published not ready ${unserved.seconds} s after it hung`);
  const hungFor = seconds((Date.now() - pausedAt) / 1000);
  const resumedAt = Date.now();
  hung.resume();
  const converged = await env.checker.waitForConvergence({ since: resumedAt, timeoutMs: 120_000 });
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
