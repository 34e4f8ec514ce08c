// A node that dies under churn, with kube-controller-manager's node
// lifecycle controller running (grace period 8 s, checked every second) and
// the simulated kubelets posting Node heartbeats every second: the node is
// powered off (its heartbeats and its agent stop), the lifecycle controller
// marks it Unknown and taints it unreachable, and its endpoints must be
// published not ready without any word from the dead agent; then it comes
// back.
import { setTimeout as delay } from "node:timers/promises";
import t from "tap";
import { eventually, expect } from "../helpers/eventually.ts";
import type { SliceJson } from "./support/checker.ts";
import { churnNamespace, FaultEnvironment } from "./support/environment.ts";
import { recordResult, seconds } from "./support/results.ts";

const env = await FaultEnvironment.start(t, {
  controllerManagerFlags: ["--controllers=node-lifecycle-controller", "--node-monitor-period=1s", "--node-monitor-grace-period=8s"],
  nodeHeartbeatIntervalMs: 1000,
});
const started = await env.startPrograms();
const agents = new Map(env.nodes.map((node, i) => [node, started.agents[i]!]));
await env.populateAndConverge(24);
const victim = env.nodes[1] ?? "";
const survivors = env.nodes.filter((node) => node !== victim);

t.test("a node powered off mid-churn: its endpoints not ready within a second of the Node turning Unknown, back when it returns", async (t) => {
  const churn = env.churn({ nodes: () => survivors });
  await churn.start();
  await delay(3000);
  const onVictim = await publishedOn(victim);
  t.ok(onVictim.total > 0 && onVictim.serving === onVictim.total, `${victim} publishes ${onVictim.total} serving endpoints`);

  await agents.get(victim)!.kill("SIGKILL");
  env.sim.kubelet.powerOff(victim);
  const offAt = Date.now();
  const unknownAt = await eventually(async () => {
    expect((await nodeReady(victim)) === "Unknown", "the lifecycle controller marks the Node Unknown");
    return Date.now();
  }, { timeoutMs: 60_000, intervalMs: 50 });
  const notServingAt = await eventually(async () => {
    const now = await publishedOn(victim);
    expect(now.total > 0 && now.serving === 0, `${now.serving} of ${now.total} endpoints on ${victim} still serving`);
    return Date.now();
  }, { timeoutMs: 60_000, intervalMs: 50 });
  const latency = notServingAt - unknownAt;
  t.pass(`Node Unknown ${seconds((unknownAt - offAt) / 1000)} s after the power-off; its endpoints not ready ${latency} ms later`);

  await delay(5000);
  await churn.stop();
  const held = await env.checker.waitForConvergence({ timeoutMs: 60_000 });
  t.pass(`exact while the node is down: ${held.addresses} addresses, the dead node's not serving`);

  env.sim.kubelet.powerOn(victim);
  await agents.get(victim)!.start();
  const backAt = Date.now();
  const converged = await env.checker.waitForConvergence({ since: backAt, timeoutMs: 120_000 });
  recordResult(t, {
    scenario: `${victim} powered off (Node heartbeats and agent stopped), node lifecycle controller running (grace 8 s)`,
    load: churn.describe(),
    outcome:
      `Node Unknown and tainted unreachable ${seconds((unknownAt - offAt) / 1000)} s after the power-off; its ${onVictim.total} endpoints ` +
      `published not ready ${latency} ms after the Node turned Unknown (polled every 50 ms), with no word from its agent; the other ` +
      `nodes exact throughout (${held.seconds} s after the churn stopped); powered on with its agent: exact again`,
    convergeSeconds: converged.seconds,
    from: "power-on and agent start",
  });
});

t.test("no program crashed", async (t) => {
  t.ok(started.aggregator.running, "the aggregator runs");
  t.equal(started.aggregator.starts, 1, "the aggregator never restarted");
});

async function nodeReady(node: string): Promise<string | undefined> {
  const object = await env.admin.http.request<{ status?: { conditions?: { type: string; status: string }[] } }>({ method: "GET", path: `/api/v1/nodes/${node}` });
  return object.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
}

/** Our EndpointSlices' endpoints on the node, and how many of them serve. */
async function publishedOn(node: string): Promise<{ total: number; serving: number }> {
  const list = await env.admin.http.request<{ items: SliceJson[] }>({
    method: "GET",
    path: `/apis/discovery.k8s.io/v1/namespaces/${churnNamespace}/endpointslices`,
    query: { labelSelector: "endpointslice.kubernetes.io/managed-by=netservice-aggregator.svcctl.metaswitch.com" },
  });
  const endpoints = list.items.flatMap((slice) => slice.endpoints ?? []).filter((endpoint) => endpoint.nodeName === node);
  return { total: endpoints.length, serving: endpoints.filter((endpoint) => endpoint.conditions?.serving === true).length };
}
