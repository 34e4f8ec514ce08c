// The programs' own credentials, as a cluster gives them: deploy/ installed
// as an operator installs it, and service-account tokens from the
// TokenRequest API bound to a pod the way the kubelet mounts them (so the
// agent's token carries its node's name, which the admission policy checks).
// The integration tests and the benchmark both use these.
//
//   await installDeploy(plane)                                      kubectl apply --server-side -k deploy/
//   const { pod, token, clients } = await agentAsDeployed(admin, kubeconfig, namespace, nodeName)
//   const { pod, token, clients } = await aggregatorAsDeployed(admin, kubeconfig, namespace)
//   await writeTokenKubeconfig(kubeconfig, token, file)             for a program started as a process
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { makeClients, type ClientOptions, type KubeClients } from "../common/kube/client.ts";
import type { KubeObject } from "../common/kube/object.ts";
import { repoRoot } from "./cluster/binaries.ts";
import { loadManifests } from "./manifests.ts";

export type BoundObject = { kind: string; apiVersion: string; name: string; uid: string };
export type DeployedPod = {
  metadata: { name: string; uid: string };
  spec?: { containers?: { env?: { name: string; value?: string }[] }[] };
};
export type Credentials = { pod: DeployedPod; token: string; clients: KubeClients };

/** kube-apiserver's default maximum is unlimited; a kubelet asks for about an hour and refreshes it, we ask once for a long run. */
const defaultExpirationSeconds = 3600;

/** deploy/ (CRDs, namespace, RBAC, Deployment, DaemonSet, admission policies, quota), applied as the README tells an operator to. */
export async function installDeploy(plane: { kubeconfig: string; binaries: { kubectl: string } }): Promise<void> {
  await promisify(execFile)(plane.binaries.kubectl, ["--kubeconfig", plane.kubeconfig, "apply", "--server-side", "-k", path.join(repoRoot, "deploy")]);
}

/** Clients for a kubeconfig's cluster, as the admin or, given a token, as that token's service account. */
export function clientsFor(kubeconfig: string, token?: string, userAgent = "netservice-test/0.1.0", options: Omit<ClientOptions, "userAgent"> = {}): KubeClients {
  return makeClients(token === undefined ? loadFile(kubeconfig) : withToken(kubeconfig, token), { userAgent, ...options });
}

/** A kubeconfig file for a program started as a process of its own: the cluster of `kubeconfig`, the user a bearer token. */
export async function writeTokenKubeconfig(kubeconfig: string, token: string, file: string): Promise<void> {
  await writeFile(file, withToken(kubeconfig, token).exportConfig(), { mode: 0o600 });
}

/** A token of the service account, bound to the object if one is given. */
export async function serviceAccountToken(
  admin: KubeClients,
  namespace: string,
  serviceAccount: string,
  boundObjectRef?: BoundObject,
  expirationSeconds = defaultExpirationSeconds,
): Promise<string> {
  const response = await admin.http.request<{ status: { token: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds, ...(boundObjectRef ? { boundObjectRef } : {}) } },
  });
  return response.status.token;
}

export function podRef(pod: { metadata?: { name?: string; uid?: string } }): BoundObject {
  return { kind: "Pod", apiVersion: "v1", name: pod.metadata!.name!, uid: pod.metadata!.uid! };
}

/**
 * The Node.js flags deploy/ gives a program: its container's NODE_OPTIONS, as
 * a list (empty when it sets none), for a process that must run as deployed.
 */
export function deployedNodeOptions(pod: DeployedPod): string[] {
  const env = (pod.spec?.containers ?? []).flatMap((container) => container.env ?? []);
  return (env.find((variable) => variable.name === "NODE_OPTIONS")?.value ?? "").split(" ").filter((flag) => flag !== "");
}

/**
 * The agent's pod on a node as deploy/'s DaemonSet makes it (the DaemonSet
 * controller is not part of the local control plane, so it is placed here as
 * that controller would), and clients with a token bound to it: the agent's
 * credentials exactly as the kubelet mounts them.
 */
export async function agentAsDeployed(
  admin: KubeClients,
  kubeconfig: string,
  namespace: string,
  nodeName: string,
  options: { userAgent?: string; expirationSeconds?: number; clients?: Omit<ClientOptions, "userAgent"> } = {},
): Promise<Credentials> {
  const template = (await daemonSetTemplate()).spec.template;
  const pod = await admin.http.request<DeployedPod>({
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/pods`,
    body: { apiVersion: "v1", kind: "Pod", metadata: { name: `netservice-agent-${nodeName}`, labels: template.metadata?.labels }, spec: { ...template.spec, nodeName } },
  });
  const token = await serviceAccountToken(admin, namespace, "netservice-agent", podRef(pod), options.expirationSeconds);
  return { pod, token, clients: clientsFor(kubeconfig, token, options.userAgent ?? "netservice-agent/test", options.clients) };
}

/**
 * The aggregator's pod as deploy/'s Deployment makes it (kube-controller-manager
 * creates it, the scheduler places it on a simulated node), and clients with a
 * token bound to it: the aggregator's credentials exactly as in a cluster.
 */
export async function aggregatorAsDeployed(
  admin: KubeClients,
  kubeconfig: string,
  namespace: string,
  options: { userAgent?: string; expirationSeconds?: number } = {},
): Promise<Credentials> {
  const deadline = Date.now() + 60_000;
  let pod: DeployedPod | undefined;
  while (!pod) {
    const list = await admin.http.request<{ items: DeployedPod[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { labelSelector: "app.kubernetes.io/name=netservice-aggregator" },
    });
    pod = list.items[0];
    if (pod) break;
    if (Date.now() > deadline) throw new Error(`no aggregator pod in ${namespace} after 60 s: is deploy/ installed and kube-controller-manager's deployment controller running?`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const token = await serviceAccountToken(admin, namespace, "netservice-aggregator", podRef(pod), options.expirationSeconds);
  return { pod, token, clients: clientsFor(kubeconfig, token, options.userAgent ?? "netservice-aggregator/test") };
}

type PodTemplate = { spec: { template: { metadata: KubeObject["metadata"]; spec: Record<string, unknown> } } };

let daemonSet: Promise<PodTemplate> | undefined;

function daemonSetTemplate(): Promise<PodTemplate> {
  daemonSet ??= loadManifests(path.join(repoRoot, "deploy", "netservice.yaml")).then((objects) => {
    const found = objects.find((o) => o.kind === "DaemonSet");
    if (!found) throw new Error("deploy/netservice.yaml has no DaemonSet");
    return found as KubeObject & PodTemplate;
  });
  return daemonSet;
}

function loadFile(kubeconfig: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc;
}

function withToken(kubeconfig: string, token: string): KubeConfig {
  const cluster = loadFile(kubeconfig).getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: "service-account", token }],
    contexts: [{ name: "service-account", cluster: cluster.name, user: "service-account" }],
    currentContext: "service-account",
  });
  return kc;
}
