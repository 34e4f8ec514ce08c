// The programs' own credentials, as a cluster gives them: service-account
// tokens from the TokenRequest API, bound to a pod on a node the way the
// kubelet mounts them (so the agent's token carries its node's name).
import { KubeConfig } from "@kubernetes/client-node";
import { makeClients, type KubeClients } from "../../common/kube/client.ts";
import { eventually, expect } from "./eventually.ts";

export type BoundObject = { kind: string; apiVersion: string; name: string; uid: string };

/** Clients for a kubeconfig's cluster, as the admin or, given a token, as that token's service account. */
export function clientsFor(kubeconfig: string, token?: string, userAgent = "netservice-test/0.1.0"): KubeClients {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  if (token !== undefined) {
    const cluster = kc.getCurrentCluster()!;
    kc.loadFromOptions({
      clusters: [cluster],
      users: [{ name: "service-account", token }],
      contexts: [{ name: "service-account", cluster: cluster.name, user: "service-account" }],
      currentContext: "service-account",
    });
  }
  return makeClients(kc, { userAgent });
}

/** A token of the service account, bound to the object if one is given. */
export async function serviceAccountToken(admin: KubeClients, namespace: string, serviceAccount: string, boundObjectRef?: BoundObject): Promise<string> {
  const response = await admin.http.request<{ status: { token: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600, ...(boundObjectRef ? { boundObjectRef } : {}) } },
  });
  return response.status.token;
}

export function podRef(pod: { metadata?: { name?: string; uid?: string } }): BoundObject {
  return { kind: "Pod", apiVersion: "v1", name: pod.metadata!.name!, uid: pod.metadata!.uid! };
}

/**
 * The aggregator's pod as deploy/'s Deployment makes it (kube-controller-manager
 * creates it, the scheduler places it on a simulated node), and clients with a
 * token bound to it: the aggregator's credentials exactly as in a cluster.
 */
export async function aggregatorAsDeployed(admin: KubeClients, kubeconfig: string, namespace: string): Promise<{ pod: { metadata: { name: string; uid: string } }; clients: KubeClients }> {
  const pod = await eventually(async () => {
    const list = await admin.http.request<{ items: { metadata: { name: string; uid: string } }[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { labelSelector: "app.kubernetes.io/name=netservice-aggregator" },
    });
    expect(list.items[0] !== undefined, "no aggregator pod yet");
    return list.items[0]!;
  }, { timeoutMs: 60_000 });
  const token = await serviceAccountToken(admin, namespace, "netservice-aggregator", podRef(pod));
  return { pod, clients: clientsFor(kubeconfig, token, "netservice-aggregator/test") };
}
