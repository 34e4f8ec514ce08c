// Pods, nodes and NetServices on a real API server, for integration tests that
// play kubelet and Multus themselves: create a pod bound to a node, then write
// its status and annotations as those would.
import { apiVersion, annotations, netServiceKind } from "../../common/api.ts";
import type { Applier } from "../../common/kube/apply.ts";
import { isConflict, isNotFound, type KubeHttp } from "../../common/kube/http.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { resourcePath } from "../../common/kube/resources.ts";
import { eventually } from "./eventually.ts";

const mergePatch = "application/merge-patch+json";

export type TestPod = {
  namespace: string;
  name: string;
  nodeName: string;
  labels?: Record<string, string>;
  /** The k8s.v1.cni.cncf.io/network-status value, verbatim. */
  networkStatus?: string;
  annotations?: Record<string, string>;
};

/**
 * Creates a pod bound to nodeName (the scheduler leaves it alone), running
 * and Ready unless told otherwise. Retries while the namespace's default
 * ServiceAccount does not exist yet, as pod admission requires it.
 */
export async function createPod(http: KubeHttp, pod: TestPod, { ready = true } = {}): Promise<KubeObject> {
  const body = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: pod.name,
      namespace: pod.namespace,
      labels: pod.labels ?? {},
      annotations: {
        ...pod.annotations,
        ...(pod.networkStatus !== undefined ? { [annotations.networkStatus]: pod.networkStatus } : {}),
      },
    },
    spec: {
      nodeName: pod.nodeName,
      automountServiceAccountToken: false,
      containers: [{ name: "main", image: "registry.k8s.io/pause:3.10" }],
    },
  };
  const path = resourcePath({ apiVersion: "v1", plural: "pods", namespace: pod.namespace });
  await eventually(async () => {
    try {
      await http.request({ method: "POST", path, body });
    } catch (err) {
      if (isConflict(err)) return;
      throw err;
    }
  }, { timeoutMs: 30_000, intervalMs: 200 });
  return setPodReady(http, pod.namespace, pod.name, ready);
}

/** Writes the status a kubelet would: Running, with the Ready condition as given. */
export async function setPodReady(http: KubeHttp, namespace: string, name: string, ready: boolean): Promise<KubeObject> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const condition = (type: string, status: boolean) => ({ type, status: status ? "True" : "False", lastTransitionTime: now });
  return http.request<KubeObject>({
    method: "PATCH",
    path: resourcePath({ apiVersion: "v1", plural: "pods", namespace, name, subresource: "status" }),
    contentType: mergePatch,
    body: {
      status: {
        phase: "Running",
        conditions: [
          condition("PodScheduled", true),
          condition("Initialized", true),
          condition("ContainersReady", ready),
          condition("Ready", ready),
        ],
      },
    },
  });
}

/** Sets (string) or removes (null) pod annotations, as Multus would. */
export async function setPodAnnotations(
  http: KubeHttp,
  namespace: string,
  name: string,
  values: Record<string, string | null>,
): Promise<KubeObject> {
  return http.request<KubeObject>({
    method: "PATCH",
    path: resourcePath({ apiVersion: "v1", plural: "pods", namespace, name }),
    contentType: mergePatch,
    body: { metadata: { annotations: values } },
  });
}

export async function deletePod(http: KubeHttp, namespace: string, name: string, gracePeriodSeconds?: number): Promise<void> {
  await http.request({
    method: "DELETE",
    path: resourcePath({ apiVersion: "v1", plural: "pods", namespace, name }),
    ...(gracePeriodSeconds !== undefined ? { body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds } } : {}),
  });
}

export function netServiceObject(
  namespace: string,
  name: string,
  spec: { netAttachDef: string; selector: Record<string, string>; [field: string]: unknown },
): KubeObject {
  return { apiVersion, kind: netServiceKind, metadata: { namespace, name }, spec };
}

export async function applyNamespaces(applier: Applier, ...names: string[]): Promise<void> {
  for (const name of names) await applier.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
}

export async function applyNodes(applier: Applier, ...names: string[]): Promise<void> {
  for (const name of names) {
    await applier.apply({ apiVersion: "v1", kind: "Node", metadata: { name, labels: { "kubernetes.io/hostname": name } } });
  }
}

/** GET of an object; undefined when it does not exist. */
export async function getObject<T extends KubeObject = KubeObject>(http: KubeHttp, path: string): Promise<T | undefined> {
  try {
    return await http.request<T>({ method: "GET", path });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
