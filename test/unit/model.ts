// A small model of what a NetService publishes, written from the documented
// rules (docs/matching.md, docs/api.md, docs/aggregator.md "Node and agent
// liveness", DESIGN.md section 5) and from nothing in common/ or aggregator/:
// no parser, matcher, address code or readiness helper of the product is used
// here. The world is described structurally, so the model knows each
// address's canonical text (or that it is never published) by construction,
// and each node's liveness and each pod's readiness from the raw facts.

export type Family = "IPv4" | "IPv6";

/** An address as some CNI wrote it, and what must be published for it: nothing when `canonical` is undefined. */
export type ModelAddress = { text: string; canonical?: string };

export type ModelAttachment = { name: string; ips?: ModelAddress[]; isDefault: boolean };

export type ModelRequest =
  | { form: "none" }
  | { form: "short" | "json"; networks: { namespace?: string; name: string }[] }
  | { form: "malformed"; text: string };

export type ModelStatus =
  | { malformed: false; attachments: ModelAttachment[] }
  | { malformed: true; text: string };

export type ModelPod = {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  node: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  readyCondition?: "True" | "False" | "Unknown";
  deleting: boolean;
  hostname?: string;
  subdomain?: string;
  request: ModelRequest;
  /** The k8s.v1.cni.cncf.io/network-status annotation; absent: only the legacy one, if any. */
  status?: ModelStatus;
  /** The legacy k8s.v1.cni.cncf.io/networks-status annotation. */
  legacyStatus?: ModelStatus;
};

export type ModelNode = {
  name: string;
  /** A Node object of this name exists. */
  exists: boolean;
  /** The Node's Ready condition; absent: none posted yet. */
  ready?: "True" | "False" | "Unknown";
  unreachable: boolean;
  zone?: string;
  heartbeat: "fresh" | "stale" | "missing";
  /** The node's reports are owned by the current Node, not by an earlier Node of the same name. */
  reportsOwnedByCurrentNode: boolean;
};

export type ModelNetService = {
  namespace: string;
  name: string;
  netAttachDef: string;
  selector: Record<string, string>;
  ipFamilies?: readonly Family[];
  publishNotReadyAddresses: boolean;
};

export type ModelWorld = { nodes: ModelNode[]; pods: ModelPod[]; netServices: ModelNetService[] };

/** One address of one pod as a NetService publishes it. */
export type ModelEndpoint = {
  pod: string;
  address: string;
  nodeName: string;
  zone?: string;
  hostname?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
};

export type ModelPublication = {
  /** Every EndpointSlice endpoint, one per (pod, address). */
  sliceEndpoints: ModelEndpoint[];
  /** The Endpoints' `addresses` and `notReadyAddresses`. */
  ready: ModelEndpoint[];
  notReady: ModelEndpoint[];
  /** Pods with at least one published address, ready or not (status counts: a pod counts once). */
  readyPods: number;
  notReadyPods: number;
};

export function modelPublication(world: ModelWorld, netService: ModelNetService): ModelPublication {
  const sliceEndpoints = world.pods.flatMap((pod) => podEndpoints(world, pod, netService));
  // The Endpoints API leaves terminating pods out, as upstream's Endpoints controller, unless publishNotReadyAddresses.
  const listed = sliceEndpoints.filter((endpoint) => !endpoint.terminating || netService.publishNotReadyAddresses);
  const pods = new Map(sliceEndpoints.map((endpoint) => [endpoint.pod, endpoint.ready]));
  const readyPods = [...pods.values()].filter(Boolean).length;
  return {
    sliceEndpoints,
    ready: listed.filter((endpoint) => endpoint.ready),
    notReady: listed.filter((endpoint) => !endpoint.ready),
    readyPods,
    notReadyPods: pods.size - readyPods,
  };
}

export function familyOf(canonical: string): Family {
  return canonical.includes(":") ? "IPv6" : "IPv4";
}

function podEndpoints(world: ModelWorld, pod: ModelPod, netService: ModelNetService): ModelEndpoint[] {
  const node = world.nodes.find((each) => each.name === pod.node);
  // A report of a node without a Node object, or owned by an earlier Node of that name, counts for nothing.
  if (!node?.exists || !node.reportsOwnedByCurrentNode) return [];
  if (pod.namespace !== netService.namespace) return [];
  if (!Object.entries(netService.selector).every(([key, value]) => pod.labels[key] === value)) return [];
  // Finished pods publish nothing, as upstream (their addresses may already be another pod's).
  if (pod.phase === "Succeeded" || pod.phase === "Failed") return [];
  // The singular annotation when present, else the legacy one; a malformed one makes the pod contribute nothing.
  const status = pod.status ?? pod.legacyStatus;
  if (!status || status.malformed) return [];

  const addresses = new Set<string>();
  for (const attachment of status.attachments) {
    if (!attachmentMatches(attachment.name, netService.netAttachDef, pod)) continue;
    for (const ip of attachment.ips ?? []) {
      if (ip.canonical === undefined) continue;
      if (netService.ipFamilies && !netService.ipFamilies.includes(familyOf(ip.canonical))) continue;
      addresses.add(ip.canonical);
    }
  }

  const nodeServes = node.ready !== "False" && node.ready !== "Unknown" && !node.unreachable && node.heartbeat === "fresh";
  const serving = pod.readyCondition === "True" && nodeServes;
  const terminating = pod.deleting;
  const ready = netService.publishNotReadyAddresses || (serving && !terminating);
  const hostname = pod.hostname !== undefined && pod.subdomain === netService.name ? pod.hostname : undefined;
  return [...addresses].map((address) => ({
    pod: `${pod.namespace}/${pod.name}`,
    address,
    nodeName: node.name,
    ...(node.zone !== undefined ? { zone: node.zone } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ready,
    serving,
    terminating,
  }));
}

// docs/matching.md, "The rule".
function attachmentMatches(entryName: string, netAttachDef: string, pod: ModelPod): boolean {
  if (netAttachDef.includes("/")) return entryName === netAttachDef;
  if (entryName === netAttachDef) return true;
  const namespaces = new Set([pod.namespace]);
  // A malformed request only loses the namespaces it named (docs/node-agent.md).
  if (pod.request.form === "short" || pod.request.form === "json") {
    for (const network of pod.request.networks) {
      if (network.name === netAttachDef) namespaces.add(network.namespace ?? pod.namespace);
    }
  }
  return [...namespaces].some((namespace) => entryName === `${namespace}/${netAttachDef}`);
}
