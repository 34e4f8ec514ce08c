// Simulated Nodes: what they look like (pod CIDRs, addresses, a Ready
// condition, capacity for 110 pods, no taints) and how they are registered.
// Node i gets the i-th /24 (IPv4) and /64 (IPv6) of the cluster's pod ranges,
// e.g. 10.244.3.0/24 and fd00:10:244:3::/64 for i = 3.
import type { V1Node } from "@kubernetes/client-node";
import { formatCidr, formatIp, nthSubnet, parseCidr, type Cidr } from "./ip.ts";
import { isConflict, mergePatch, rfc3339, type SimClients } from "./kube.ts";

export type IpFamilyName = "IPv4" | "IPv6";

export type NodeLayout = {
  namePrefix: string;
  ipFamilies: IpFamilyName[];
  /** The cluster's pod ranges, cut into one subnet per node. */
  podCidr: Record<IpFamilyName, string>;
  nodeMaskSize: Record<IpFamilyName, number>;
  /** Where the nodes' own (InternalIP) addresses come from. */
  nodeAddresses: Record<IpFamilyName, string>;
  zones: number;
  kubeletVersion: string;
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
};

// Wider than hack/cluster's podCidr (a /16 holds only 256 node /24s), and
// disjoint from the service ranges 10.96.0.0/16 and fd00:10:96::/112.
export const defaultLayout: NodeLayout = {
  namePrefix: "sim-node-",
  ipFamilies: ["IPv4", "IPv6"],
  podCidr: { IPv4: "10.244.0.0/14", IPv6: "fd00:10:244::/48" },
  nodeMaskSize: { IPv4: 24, IPv6: 64 },
  nodeAddresses: { IPv4: "172.20.0.0/16", IPv6: "fd00:172:20::/64" },
  zones: 3,
  kubeletVersion: "v1.36.3",
  capacity: { cpu: "8", memory: "32Gi", pods: "110", "ephemeral-storage": "100Gi", "hugepages-1Gi": "0", "hugepages-2Mi": "0" },
  allocatable: { cpu: "7900m", memory: "31Gi", pods: "110", "ephemeral-storage": "95Gi", "hugepages-1Gi": "0", "hugepages-2Mi": "0" },
};

/** On every simulated Node, so that a test or a clean-up can tell them apart. */
export const simulatedNodeLabel = "sim.svcctl.metaswitch.com/simulated";

export type SimNode = {
  name: string;
  index: number;
  /** Primary family first, as in spec.podCIDRs. */
  podCIDRs: string[];
  /** InternalIP addresses, same family order. */
  addresses: string[];
  zone: string;
};

/** The index-th simulated node of the layout; throws when the pod ranges have no subnet left for it. */
export function simNode(index: number, layout: NodeLayout = defaultLayout): SimNode {
  const podCIDRs = layout.ipFamilies.map((family) => {
    const subnet = nthSubnet(cidr(layout.podCidr[family]), layout.nodeMaskSize[family], index);
    if (!subnet) throw new Error(`pod range ${layout.podCidr[family]} has no /${layout.nodeMaskSize[family]} left for node ${index}`);
    return formatCidr(subnet);
  });
  const addresses = layout.ipFamilies.map((family) => {
    const range = cidr(layout.nodeAddresses[family]);
    return formatIp({ family: range.family, value: range.network + BigInt(index + 1) });
  });
  return { name: `${layout.namePrefix}${index}`, index, podCIDRs, addresses, zone: `zone-${String.fromCharCode(97 + (index % layout.zones))}` };
}

/** The Node object without status (create drops nothing that way, and status goes through its subresource). */
export function nodeManifest(node: SimNode): V1Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: node.name,
      labels: {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": node.zone,
        "node.kubernetes.io/instance-type": "simulated",
        [simulatedNodeLabel]: "true",
      },
    },
    spec: { podCIDR: node.podCIDRs[0], podCIDRs: node.podCIDRs },
  };
}

/** Node status as a kubelet reports it: Ready, no pressure, capacity, addresses, version. */
export function nodeStatus(node: SimNode, layout: NodeLayout, now: number, heartbeat: number = now): Record<string, unknown> {
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    lastHeartbeatTime: rfc3339(heartbeat),
    lastTransitionTime: rfc3339(now),
    reason,
    message,
  });
  return {
    capacity: layout.capacity,
    allocatable: layout.allocatable,
    conditions: [
      condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
      condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
      condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
      condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ],
    addresses: [...node.addresses.map((address) => ({ type: "InternalIP", address })), { type: "Hostname", address: node.name }],
    daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
    nodeInfo: {
      machineID: machineId(node.name),
      systemUUID: machineId(`${node.name}/uuid`),
      bootID: machineId(`${node.name}/boot`),
      kernelVersion: "6.1.0-simulated",
      osImage: "netservice simulated node",
      containerRuntimeVersion: "containerd://2.1.0",
      kubeletVersion: layout.kubeletVersion,
      operatingSystem: "linux",
      architecture: "amd64",
    },
  };
}

/**
 * Creates the Node (or adopts a simulated one left by an earlier run), sets
 * its status, and removes taints that admission added on create (the
 * TaintNodesByCondition plugin's not-ready taint is only ever removed by the
 * node-lifecycle controller, which the local control plane does not run).
 */
export async function registerNode(clients: Pick<SimClients, "core">, node: SimNode, layout: NodeLayout, now: number): Promise<void> {
  const { core } = clients;
  let created: V1Node;
  try {
    created = await core.createNode({ body: nodeManifest(node) });
  } catch (error) {
    if (!isConflict(error)) throw error;
    created = await core.readNode({ name: node.name });
    if (created.metadata?.labels?.[simulatedNodeLabel] !== "true") {
      throw new Error(`node ${node.name} exists and is not a simulated node; choose another namePrefix`);
    }
  }
  await core.patchNodeStatus({ name: node.name, body: { status: nodeStatus(node, layout, now) } }, mergePatch);
  if ((created.spec?.taints ?? []).length > 0) {
    await core.patchNode({ name: node.name, body: { spec: { taints: null } } }, mergePatch);
  }
}

/** The simulated nodes of one process, by name. */
export class NodeRegistry {
  readonly #nodes = new Map<string, SimNode>();

  add(node: SimNode): void {
    this.#nodes.set(node.name, node);
  }

  get(name: string): SimNode | undefined {
    return this.#nodes.get(name);
  }

  has(name: string): boolean {
    return this.#nodes.has(name);
  }

  list(): SimNode[] {
    return [...this.#nodes.values()];
  }

  get size(): number {
    return this.#nodes.size;
  }
}

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`${text} is not a CIDR`);
  return parsed;
}

function machineId(seed: string): string {
  let hash = 0x811c9dc5;
  const out: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const char of `${seed}#${round}`) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
    out.push(hash.toString(16).padStart(8, "0"));
  }
  return out.join("");
}
