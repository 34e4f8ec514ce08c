// The programs' own credentials, as a cluster gives them: service-account
// tokens from the TokenRequest API, bound to a pod on a node the way the
// kubelet mounts them (so the agent's token carries its node's name).
import { KubeConfig } from "@kubernetes/client-node";
import { makeClients, type KubeClients } from "../../common/kube/client.ts";

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
