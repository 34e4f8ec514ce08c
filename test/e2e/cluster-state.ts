// Reading what the cluster holds, for the end-to-end assertions: the pods'
// own network-status (the truth) and the objects netservice published.
import type { KubeClients } from "../../common/kube/client.ts";

export type Pod = {
  metadata: { namespace: string; name: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status?: { phase?: string; podIP?: string; podIPs?: { ip: string }[]; conditions?: { type: string; status: string }[] };
};
export type EndpointAddress = { ip: string; nodeName?: string; hostname?: string; targetRef?: { kind: string; name: string; namespace: string; uid: string } };
export type Endpoints = {
  metadata: { name: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { uid: string; controller?: boolean }[] };
  subsets?: { addresses?: EndpointAddress[]; notReadyAddresses?: EndpointAddress[]; ports?: { name?: string; port: number; protocol?: string }[] }[];
};
export type Slice = {
  metadata: { name: string; labels?: Record<string, string> };
  addressType: string;
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean }; targetRef?: { name: string }; nodeName?: string }[];
  ports?: { name?: string; port: number }[];
};
export type Service = { metadata: { name: string; resourceVersion: string; ownerReferences?: { uid: string }[]; labels?: Record<string, string> }; spec: { clusterIP?: string; selector?: Record<string, string>; ports?: { port: number }[] } };
export type NetServiceStatus = { observedGeneration?: number; readyEndpoints?: number; notReadyEndpoints?: number; nodesReporting?: number; conditions?: { type: string; status: string; reason: string; message: string }[] };

export async function listPods(clients: KubeClients, namespace: string, labelSelector: string): Promise<Pod[]> {
  const list = await clients.http.request<{ items: Pod[] }>({ method: "GET", path: `/api/v1/namespaces/${namespace}/pods`, query: { labelSelector } });
  return list.items;
}

/** A pod's addresses on one attachment, straight from its annotation: what the endpoints must hold. */
export function attachmentAddresses(pod: Pod, network: string, annotation = "k8s.v1.cni.cncf.io/network-status"): string[] {
  const value = pod.metadata.annotations?.[annotation];
  if (!value) return [];
  const entries = JSON.parse(value) as { name: string; ips?: string[] }[];
  return entries.filter((entry) => entry.name === network).flatMap((entry) => entry.ips ?? []).map((ip) => ip.replace(/\/\d+$/, ""));
}

export async function getOrUndefined<T>(clients: KubeClients, path: string): Promise<T | undefined> {
  try {
    return await clients.http.request<T>({ method: "GET", path });
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

export const endpointsOf = (clients: KubeClients, namespace: string, name: string) =>
  getOrUndefined<Endpoints>(clients, `/api/v1/namespaces/${namespace}/endpoints/${name}`);

export const serviceOf = (clients: KubeClients, namespace: string, name: string) =>
  getOrUndefined<Service>(clients, `/api/v1/namespaces/${namespace}/services/${name}`);

export async function slicesOf(clients: KubeClients, namespace: string, service: string): Promise<Slice[]> {
  const list = await clients.http.request<{ items: Slice[] }>({
    method: "GET",
    path: `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
    query: { labelSelector: `kubernetes.io/service-name=${service}` },
  });
  return list.items;
}

export async function statusOf(clients: KubeClients, namespace: string, name: string): Promise<NetServiceStatus | undefined> {
  const ns = await getOrUndefined<{ status?: NetServiceStatus }>(clients, `/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${namespace}/netservices/${name}`);
  return ns?.status;
}

/** ip -> {pod, ready} from an Endpoints object. */
export function endpointsByIp(endpoints: Endpoints | undefined): Map<string, { pod: string; ready: boolean; node?: string }> {
  const result = new Map<string, { pod: string; ready: boolean; node?: string }>();
  for (const subset of endpoints?.subsets ?? []) {
    for (const a of subset.addresses ?? []) result.set(a.ip, { pod: a.targetRef?.name ?? "", ready: true, ...(a.nodeName ? { node: a.nodeName } : {}) });
    for (const a of subset.notReadyAddresses ?? []) result.set(a.ip, { pod: a.targetRef?.name ?? "", ready: false, ...(a.nodeName ? { node: a.nodeName } : {}) });
  }
  return result;
}

/** ip -> conditions from every slice of a Service. */
export function slicesByIp(slices: Slice[]): Map<string, { pod: string; ready?: boolean; serving?: boolean; terminating?: boolean; family: string }> {
  const result = new Map<string, { pod: string; ready?: boolean; serving?: boolean; terminating?: boolean; family: string }>();
  for (const slice of slices) {
    for (const endpoint of slice.endpoints ?? []) {
      for (const ip of endpoint.addresses) result.set(ip, { pod: endpoint.targetRef?.name ?? "", ...endpoint.conditions, family: slice.addressType });
    }
  }
  return result;
}

export function sorted(values: Iterable<string>): string[] {
  return [...values].sort();
}
