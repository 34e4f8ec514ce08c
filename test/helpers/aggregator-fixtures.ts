// Input and output of the aggregator on a real API server: node reports
// written exactly as an agent would (so a test controls the aggregator's
// input without agents, pods or Multus), and reads of what it published.
import { agentFieldManager, apiVersion, labels, netServicePlural, reportKind, reportPlural, type ReportSpec } from "../../common/api.ts";
import { Applier } from "../../common/kube/apply.ts";
import type { KubeHttp } from "../../common/kube/http.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { resourcePath } from "../../common/kube/resources.ts";
import { getObject } from "./objects.ts";

/** One pod of a node as an agent reports it, with its addresses on one NetService's network. */
export type ReportedPod = {
  name: string;
  addresses: string[];
  /** Pod condition Ready. Default true. */
  serving?: boolean;
  terminating?: boolean;
  hostname?: string;
  /** The pod's uid; default podUid(namespace, name), for a pod that need not exist. */
  uid?: string;
};

type NetServiceRef = { namespace: string; name: string; uid: string; generation: number };

/**
 * Keeps, per node, what its report says for each NetService, and writes the
 * whole report on every change as the agent does (server-side apply, the
 * agent's field manager, named after the node).
 */
export class NodeReports {
  private readonly applier: Applier;
  private readonly http: KubeHttp;
  private readonly namespace: string;
  private readonly nodes = new Map<string, Map<string, { ref: NetServiceRef; pods: ReportedPod[] }>>();

  constructor(http: KubeHttp, namespace: string) {
    this.http = http;
    this.applier = new Applier(http, { fieldManager: agentFieldManager });
    this.namespace = namespace;
  }

  /** Sets the node's entry for a NetService (as read from the API: uid and generation) and writes the report. */
  async set(nodeName: string, netService: KubeObject, pods: ReportedPod[], triggerTime = new Date().toISOString()): Promise<ReportSpec> {
    const ref = refOf(netService);
    let entries = this.nodes.get(nodeName);
    if (!entries) {
      entries = new Map();
      this.nodes.set(nodeName, entries);
    }
    entries.set(`${ref.namespace}/${ref.name}`, { ref, pods });
    return this.write(nodeName, triggerTime);
  }

  /** Every node with an entry for the NetService recomputes it from the NetService's current generation, as agents do after an edit. */
  async regenerate(netService: KubeObject): Promise<void> {
    const ref = refOf(netService);
    for (const [nodeName, entries] of this.nodes) {
      const entry = entries.get(`${ref.namespace}/${ref.name}`);
      if (!entry) continue;
      entry.ref = ref;
      await this.write(nodeName, new Date().toISOString());
    }
  }

  /** Writes the node's report again as it stands, with a new trigger time only. */
  async rewrite(nodeName: string, triggerTime = new Date().toISOString()): Promise<ReportSpec> {
    return this.write(nodeName, triggerTime);
  }

  async delete(nodeName: string): Promise<void> {
    this.nodes.delete(nodeName);
    await this.applier.delete(
      { apiVersion, kind: reportKind, metadata: { namespace: this.namespace, name: nodeName } },
      { uid: (await this.get(nodeName))?.metadata?.uid ?? "missing" },
    );
  }

  get(nodeName: string): Promise<KubeObject | undefined> {
    return getObject(this.http, resourcePath({ apiVersion, plural: reportPlural, namespace: this.namespace, name: nodeName }));
  }

  private async write(nodeName: string, triggerTime: string): Promise<ReportSpec> {
    const pods: ReportSpec["pods"] = [];
    const indexOf = new Map<string, number>();
    const netServices: ReportSpec["netServices"] = [];
    for (const { ref, pods: reported } of this.nodes.get(nodeName)?.values() ?? []) {
      const endpoints = reported.map((pod) => {
        const id = `${ref.namespace}/${pod.name}`;
        let index = indexOf.get(id);
        if (index === undefined) {
          index = pods.length;
          indexOf.set(id, index);
          pods.push({
            namespace: ref.namespace,
            name: pod.name,
            uid: pod.uid ?? podUid(ref.namespace, pod.name),
            // A pod with a hostname has the NetService as its subdomain here (as a StatefulSet's serviceName would).
            ...(pod.hostname ? { hostname: pod.hostname, subdomain: ref.name } : {}),
            serving: pod.serving ?? true,
            terminating: pod.terminating ?? false,
          });
        }
        return { pod: index, addresses: pod.addresses };
      });
      netServices.push({ ...ref, endpoints });
    }
    const spec: ReportSpec = { nodeName, triggerTime, pods, netServices };
    // Owned by the Node, as an agent's: the aggregator ignores a report of another Node of the name.
    const node = await getObject(this.http, `/api/v1/nodes/${nodeName}`);
    const owner = node?.metadata?.uid ? [{ apiVersion: "v1", kind: "Node", name: nodeName, uid: node.metadata.uid }] : [];
    await this.applier.apply({
      apiVersion,
      kind: reportKind,
      metadata: { namespace: this.namespace, name: nodeName, labels: { [labels.nodeName]: nodeName }, ownerReferences: owner },
      spec,
    });
    return spec;
  }
}

/** The uid the reports give a pod; tests compare targetRefs with it. */
export function podUid(namespace: string, name: string): string {
  return `uid-${namespace}-${name}`;
}

function refOf(netService: KubeObject): NetServiceRef {
  const { namespace, name, uid, generation } = netService.metadata ?? {};
  if (!namespace || !name || !uid) throw new Error("pass the NetService as read from the API server (it needs its uid)");
  return { namespace, name, uid, generation: generation ?? 1 };
}

export type EndpointsJson = KubeObject & {
  subsets?: {
    addresses?: AddressJson[];
    notReadyAddresses?: AddressJson[];
    ports?: { name?: string; port: number; protocol?: string }[];
  }[];
};
export type AddressJson = { ip: string; hostname?: string; nodeName?: string; targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string } };
export type SliceJson = KubeObject & {
  addressType: string;
  endpoints?: {
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    hostname?: string;
    nodeName?: string;
    targetRef?: { kind?: string; name?: string; uid?: string };
  }[];
  ports?: { name?: string; port?: number; protocol?: string }[];
};
export type ServiceJson = KubeObject & {
  spec?: {
    clusterIP?: string;
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; protocol?: string }[];
    ipFamilies?: string[];
    ipFamilyPolicy?: string;
    publishNotReadyAddresses?: boolean;
  };
};
export type NetServiceJson = KubeObject & {
  status?: {
    observedGeneration?: number;
    readyEndpoints?: number;
    notReadyEndpoints?: number;
    nodesReporting?: number;
    conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[];
  };
};

/** Reads of what the aggregator published in one namespace. */
export class Published {
  private readonly http: KubeHttp;
  private readonly namespace: string;

  constructor(http: KubeHttp, namespace: string) {
    this.http = http;
    this.namespace = namespace;
  }

  service(name: string): Promise<ServiceJson | undefined> {
    return getObject(this.http, resourcePath({ apiVersion: "v1", plural: "services", namespace: this.namespace, name }));
  }

  endpoints(name: string): Promise<EndpointsJson | undefined> {
    return getObject(this.http, resourcePath({ apiVersion: "v1", plural: "endpoints", namespace: this.namespace, name }));
  }

  netService(name: string): Promise<NetServiceJson | undefined> {
    return getObject(this.http, resourcePath({ apiVersion, plural: netServicePlural, namespace: this.namespace, name }));
  }

  /** Every EndpointSlice of a Service, whoever manages it, sorted by name. */
  async slices(serviceName: string): Promise<SliceJson[]> {
    const list = await this.http.request<{ items: SliceJson[] }>({
      method: "GET",
      path: resourcePath({ apiVersion: "discovery.k8s.io/v1", plural: "endpointslices", namespace: this.namespace }),
      query: { labelSelector: `${labels.serviceName}=${serviceName}` },
    });
    return list.items.sort((a, b) => ((a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1));
  }

  /** events.k8s.io Events about an object, oldest first. */
  async events(name: string): Promise<{ reason?: string; type?: string; note?: string; reportingController?: string }[]> {
    const list = await this.http.request<{ items: { regarding?: { name?: string }; reason?: string; type?: string; note?: string; reportingController?: string; eventTime?: string }[] }>({
      method: "GET",
      path: resourcePath({ apiVersion: "events.k8s.io/v1", plural: "events", namespace: this.namespace }),
    });
    return list.items
      .filter((event) => event.regarding?.name === name)
      .sort((a, b) => ((a.eventTime ?? "") < (b.eventTime ?? "") ? -1 : 1));
  }
}

/** The IPs of an Endpoints object: ready and not ready, each sorted. */
export function endpointIps(endpoints: EndpointsJson | undefined): { ready: string[]; notReady: string[] } {
  const subsets = endpoints?.subsets ?? [];
  return {
    ready: subsets.flatMap((s) => s.addresses ?? []).map((a) => a.ip).sort(),
    notReady: subsets.flatMap((s) => s.notReadyAddresses ?? []).map((a) => a.ip).sort(),
  };
}

/** The Ready condition of a NetService's status. */
export function readyCondition(netService: NetServiceJson | undefined) {
  return netService?.status?.conditions?.find((condition) => condition.type === "Ready");
}
