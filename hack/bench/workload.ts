// What the benchmark puts into the cluster: NetServices on the demo's IPv4
// network `access` (so that our side and Kubernetes' each publish one
// EndpointSlice per 100 pods), bare pods bound to simulated nodes, and the
// pods it may pick for the next churn event.
//
//   netServiceManifest(namespace, index), podManifest(namespace, spec)
//   new PodPool(random): add, remove, pick(filter), get, size
import { apiVersion, annotations, netServiceKind } from "../../common/api.ts";
import type { KubeObject } from "../../common/kube/object.ts";

/** Network of every benchmark pod and NetService: the demo's IPv4-only NAD (hack/demo/networks.yaml). */
export const benchNetwork = { namespace: "networks", name: "access" } as const;
export const benchNetworkKey = `${benchNetwork.namespace}/${benchNetwork.name}`;

export function netServiceName(index: number): string {
  return `bench-${index}`;
}

export function netServiceManifest(namespace: string, index: number): KubeObject {
  return {
    apiVersion,
    kind: netServiceKind,
    metadata: { name: netServiceName(index), namespace },
    // IPv4 only, as the network: the template Service is then single-stack too, one slice per 100 pods on each side.
    spec: { netAttachDef: benchNetworkKey, selector: { app: netServiceName(index) }, ipFamilies: ["IPv4"] },
  };
}

export type BenchPodSpec = { name: string; nodeName: string; netService: number; gracePeriodSeconds: number };

export function podManifest(namespace: string, spec: BenchPodSpec): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: spec.name,
      namespace,
      labels: { app: netServiceName(spec.netService) },
      annotations: {
        [annotations.networksRequest]: JSON.stringify([{ name: benchNetwork.name, namespace: benchNetwork.namespace, interface: "net1" }]),
      },
    },
    // Bound to its node directly: the scheduler is not what is measured.
    spec: {
      nodeName: spec.nodeName,
      terminationGracePeriodSeconds: spec.gracePeriodSeconds,
      containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }],
    },
  };
}

export type BenchPod = {
  namespace: string;
  name: string;
  uid: string;
  nodeName: string;
  ready: boolean;
  /** An event on it is in flight: no other one starts until it has settled. */
  busy: boolean;
  /** Being deleted: never picked again. */
  deleting: boolean;
};

/** The benchmark's live pods, with O(1) random picks. */
export class PodPool {
  readonly #random: () => number;
  readonly #byUid = new Map<string, BenchPod>();
  readonly #order: string[] = [];
  readonly #index = new Map<string, number>();

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  get size(): number {
    return this.#order.length;
  }

  get(uid: string): BenchPod | undefined {
    return this.#byUid.get(uid);
  }

  add(pod: BenchPod): void {
    if (this.#byUid.has(pod.uid)) return;
    this.#byUid.set(pod.uid, pod);
    this.#index.set(pod.uid, this.#order.length);
    this.#order.push(pod.uid);
  }

  remove(uid: string): void {
    const index = this.#index.get(uid);
    if (index === undefined) return;
    const last = this.#order.pop() as string;
    if (last !== uid) {
      this.#order[index] = last;
      this.#index.set(last, index);
    }
    this.#index.delete(uid);
    this.#byUid.delete(uid);
  }

  /** A random pod that passes the filter (a few random tries, then a scan); undefined if none does. */
  pick(filter: (pod: BenchPod) => boolean): BenchPod | undefined {
    for (let attempt = 0; attempt < 32 && this.#order.length > 0; attempt++) {
      const pod = this.#byUid.get(this.#order[Math.floor(this.#random() * this.#order.length)] as string);
      if (pod && filter(pod)) return pod;
    }
    const start = Math.floor(this.#random() * Math.max(1, this.#order.length));
    for (let i = 0; i < this.#order.length; i++) {
      const pod = this.#byUid.get(this.#order[(start + i) % this.#order.length] as string);
      if (pod && filter(pod)) return pod;
    }
    return undefined;
  }
}
