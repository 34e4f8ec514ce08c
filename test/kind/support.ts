// What the tests of test/kind/ share: the kind cluster that hack/kind/e2e.sh
// created and installed netservice on (NETSERVICE_E2E_KUBECONFIG, and
// NETSERVICE_KIND_CLUSTER for its node containers), kubectl and docker, and
// small readers of what netservice published. These tests run real kubelets,
// containerd and Multus; they are only run by e2e.sh (npm run test:kind).
import { execFile } from "node:child_process";
import type { Test } from "tap";
import type { Applier } from "../../common/kube/apply.ts";
import type { KubeClients } from "../../common/kube/client.ts";
import { openCluster } from "../e2e/environment.ts";
import { endpointsByIp, endpointsOf, listPods, type Pod } from "../e2e/cluster-state.ts";

export type KindCluster = {
  clients: KubeClients;
  applier: Applier;
  kubeconfig: string;
  /** kind's cluster name: its node containers are named after the nodes. */
  name: string;
  /** Public image -> local stand-in (NETSERVICE_E2E_IMAGES). */
  image: (publicImage: string) => string;
};

export const systemNamespace = "netservice-system";

/** The cluster, or undefined (the file is then skipped, or failed under CI) when none was given. */
export function openKindCluster(t: Test): KindCluster | undefined {
  const kubeconfig = process.env.NETSERVICE_E2E_KUBECONFIG;
  const name = process.env.NETSERVICE_KIND_CLUSTER;
  if (!kubeconfig || !name) {
    const why = "needs a kind cluster with netservice installed: run through hack/kind/e2e.sh (npm run test:kind), which sets NETSERVICE_E2E_KUBECONFIG and NETSERVICE_KIND_CLUSTER";
    if (process.env.CI) t.fail(why);
    else t.plan(0, why);
    return undefined;
  }
  const { clients, applier, images } = openCluster(t, kubeconfig, "netservice-kind-test");
  return { clients, applier, kubeconfig, name, image: (publicImage) => images.get(publicImage) ?? publicImage };
}

/** Runs a command to its end; resolves with its stdout, rejects with its stderr. Output is small here (1 MiB cap). */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 1024 * 1024, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${error.message.split("\n")[0]}\n${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}

export function kubectl(cluster: KindCluster, ...args: string[]): Promise<string> {
  return run("kubectl", args, { KUBECONFIG: cluster.kubeconfig });
}

/** A command in a pod's (first) container, through the kubelet: what a user's `kubectl exec` does. */
export function execIn(cluster: KindCluster, pod: string, command: string[], namespace = "default"): Promise<string> {
  return kubectl(cluster, "-n", namespace, "exec", pod, "--", ...command);
}

/** The worker nodes, sorted: kind names them <cluster>-worker, <cluster>-worker2. */
export async function workers(cluster: KindCluster): Promise<string[]> {
  const nodes = await cluster.clients.http.request<{ items: { metadata: { name: string; labels?: Record<string, string> } }[] }>({ method: "GET", path: "/api/v1/nodes" });
  return nodes.items
    .filter((node) => !("node-role.kubernetes.io/control-plane" in (node.metadata.labels ?? {})))
    .map((node) => node.metadata.name)
    .sort();
}

export function runningPods(pods: Pod[]): Pod[] {
  return pods.filter((pod) => pod.status?.phase === "Running" && !pod.metadata.deletionTimestamp);
}

/** The NetService's Endpoints as "ip ready|notReady" lines, sorted: a value to compare before, during and after a fault. */
export async function endpointLines(cluster: KindCluster, name: string): Promise<string[]> {
  const endpoints = endpointsByIp(await endpointsOf(cluster.clients, "default", name));
  return [...endpoints].map(([ip, e]) => `${ip} ${e.ready ? "ready" : "notReady"} ${e.pod ?? ""}`).sort();
}

/** The agent pod running on a node. */
export async function agentPodOn(cluster: KindCluster, node: string): Promise<Pod & { status?: { containerStatuses?: { name: string; restartCount: number; ready: boolean; containerID?: string }[] } }> {
  const pods = await listPods(cluster.clients, systemNamespace, "app.kubernetes.io/name=netservice-agent");
  const pod = pods.find((p) => p.spec.nodeName === node);
  if (!pod) throw new Error(`no netservice agent pod on ${node}`);
  return pod;
}
