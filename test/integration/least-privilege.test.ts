// The end-to-end flow with deploy/ installed and each program holding only
// its own service account's token: one agent per node with a token bound to
// a pod on that node (the admission policy ties its report to that node),
// and the aggregator with a token bound to one of its Deployment's pods.
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import t from "tap";
import { Aggregator } from "../../aggregator/aggregator.ts";
import { Applier } from "../../common/kube/apply.ts";
import { repoRoot } from "../../hack/cluster/binaries.ts";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { SimulatedCluster } from "../../hack/sim/cluster.ts";
import { NodeAgent } from "../../node-agent/agent.ts";
import { attachmentAddresses, endpointsByIp, endpointsOf, listPods, sorted } from "../e2e/cluster-state.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { agentAsDeployed, aggregatorAsDeployed, clientsFor, installDeploy } from "../helpers/credentials.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

const systemNamespace = "netservice-system";
const demo = path.join(repoRoot, "hack", "demo");

const plane = await startControlPlane(t);
await installDeploy(plane);
const admin = clientsFor(plane.kubeconfig);
boundedTeardown(t, { name: "admin clients", timeoutMs: 10_000, run: () => admin.close() });
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(plane.kubeconfig);
const sim = new SimulatedCluster({ kubeConfig, clients: admin });
t.teardown(() => sim.stop((line) => t.comment(line)));
await sim.start();
const nodes = await sim.addNodes(2);
const agents: NodeAgent[] = [];
for (const node of nodes) {
  // The DaemonSet controller is not part of the local control plane: the agent's pod is placed on its node as it would.
  const { clients } = await agentAsDeployed(admin, plane.kubeconfig, systemNamespace, node.name);
  const agent = new NodeAgent(node.name, clients, { systemNamespace });
  agents.push(agent);
  boundedTeardown(t, { name: `agent of ${node.name}`, timeoutMs: 30_000, run: () => agent.stop() }, { name: "its clients", timeoutMs: 10_000, run: () => clients.close() });
}

// The Deployment's pods are created by kube-controller-manager and scheduled onto the simulated nodes.
const { pod: aggregatorPod, clients: aggregatorClients } = await aggregatorAsDeployed(admin, plane.kubeconfig, systemNamespace);
const aggregator = new Aggregator(aggregatorClients, { identity: aggregatorPod.metadata.name, systemNamespace });
boundedTeardown(t, { name: "aggregator", timeoutMs: 30_000, run: () => aggregator.stop() }, { name: "its clients", timeoutMs: 10_000, run: () => aggregatorClients.close() });

t.test("with only their own permissions, the agents and the aggregator publish the seed samples", async (t) => {
  // The report CRD was installed a moment ago: until its watch cache is initialized the API server answers
  // lists with 429, which an agent retries but counts as a failure. Wait for it, as a cluster long up has.
  await eventually(async () => {
    await admin.http.request({ method: "GET", path: `/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${systemNamespace}/netservicenodereports` });
  }, { timeoutMs: 30_000 });
  await Promise.all(agents.map((agent) => agent.start()));
  await aggregator.start();
  const applier = new Applier(admin.http, { fieldManager: "netservice-test" });
  await applyManifests(applier, admin.http, await loadManifests(
    path.join(demo, "networks.yaml"),
    ...["multi.yaml", "core.yaml", "access.yaml"].map((file) => path.join(demo, "samples", file)),
  ));
  for (const [name, network] of [["corens", "networks/core"], ["accessns", "networks/access"]] as const) {
    await eventually(async () => {
      const pods = (await listPods(admin, "default", "app=utils")).filter((pod) => pod.status?.phase === "Running");
      const want = sorted(pods.flatMap((pod) => attachmentAddresses(pod, network)));
      const got = sorted(endpointsByIp(await endpointsOf(admin, "default", name)).keys());
      expect(pods.length === 3 && JSON.stringify(want) === JSON.stringify(got), `${name}: want ${want}, got ${got}`);
    }, { timeoutMs: 120_000 });
    t.pass(`${name} holds the pods' ${network} addresses`);
  }
  t.ok(aggregator.leading, "the aggregator took the Lease with its own token");
  t.equal(agents.filter((agent) => agent.stats.failures > 0).length, 0, "no agent write was refused");
});
