// The wires between simulated nodes. Each node is a network namespace of its
// own, as a machine would be: `eth0` (its InternalIP addresses), the default
// pod network's bridge, and whatever the CNI plugins create for secondary
// networks. The nodes' eth0 are veths into one switch (a bridge in a fabric
// namespace), so
//   - a macvlan network over `eth0` spans every node, as on a real LAN;
//   - a bridge network (a bridge per node, e.g. br-core) spans every node
//     once a vxlan port joins it to the same bridge on the other nodes, as
//     an overlay would in a cluster. The vxlan is added after each CNI ADD
//     for every bridge the plugins created, so any bridge NAD works without
//     the fabric knowing NAD names.
//
//   fabric netns ──┬── n0 ══ eth0 (node 0 netns) ── br-core ── vxlan ┐
//   bridge         ├── n1 ══ eth0 (node 1 netns) ── br-core ── vxlan ┤ multicast group
//   "fabric"       └── ...                                            ┘ on the fabric
import { createHash } from "node:crypto";
import { mkdir, symlink } from "node:fs/promises";
import path from "node:path";
import type { SimNode } from "../sim/nodes.ts";
import { mustRun } from "./command.ts";
import type { RunScope } from "./run-scope.ts";

/** The bridge of each node's default pod network. */
export const defaultBridge = "cni0";

const fabricBridge = "fabric";
const vxlanGroup = "239.1.1.1";
const vxlanPort = "4789";
// Room for the vxlan header, so the overlay carries 1500-byte frames.
const underlayMtu = "1550";

export type NodeNetwork = {
  node: SimNode;
  netns: string;
  netnsPath: string;
  /** Mounted over /var/lib for every CNI plugin run on this node: CNI caches, Multus' cache, default-network IPAM. */
  varLibDir: string;
};

export class Fabric {
  readonly #scope: RunScope;
  readonly #nodes = new Map<string, NodeNetwork>();
  readonly #nodeLocks = new Map<string, Promise<unknown>>();
  #netns: string | undefined;

  constructor(scope: RunScope) {
    this.#scope = scope;
  }

  /** IPAM state of the secondary networks (host-local's /var/lib/cni/networks), shared by all nodes; see addNode. */
  get sharedIpamDir(): string {
    return path.join(this.#scope.dir, "ipam");
  }

  async start(): Promise<void> {
    if (this.#netns) return;
    this.#netns = await this.#scope.addNetns("fabric");
    await mkdir(this.sharedIpamDir, { recursive: true });
    await ipIn(this.#netns, "link", "add", fabricBridge, "type", "bridge", "mcast_snooping", "0");
    await ipIn(this.#netns, "link", "set", fabricBridge, "up");
  }

  /** The node's namespace, plugged into the fabric, with its InternalIP addresses on eth0. */
  async addNode(node: SimNode): Promise<NodeNetwork> {
    const existing = this.#nodes.get(node.name);
    if (existing) return existing;
    if (!this.#netns) throw new Error("Fabric.start() first");
    const netns = await this.#scope.addNetns(`n${node.index}`);
    const port = `n${node.index}`;
    await ipIn(this.#netns, "link", "add", port, "mtu", underlayMtu, "type", "veth", "peer", "name", "eth0", "netns", netns);
    await ipIn(this.#netns, "link", "set", port, "master", fabricBridge, "up");
    await ipIn(netns, "link", "set", "lo", "up");
    await ipIn(netns, "link", "set", "eth0", "mtu", underlayMtu, "up");
    for (const address of node.addresses) {
      await ipIn(netns, "address", "add", `${address}/${address.includes(":") ? 64 : 16}`, "dev", "eth0", ...(address.includes(":") ? ["nodad"] : []));
    }
    // host-local keeps its state in /var/lib/cni/networks/<network>. A bridge
    // network spans the nodes, so its addresses must be unique across them:
    // the nodes share that directory, standing in for a cluster-wide IPAM
    // such as whereabouts. Everything else under /var/lib stays per node.
    const varLibDir = path.join(this.#scope.dir, "nodes", node.name, "var-lib");
    await mkdir(path.join(varLibDir, "cni"), { recursive: true });
    await symlink(this.sharedIpamDir, path.join(varLibDir, "cni", "networks"));
    const network: NodeNetwork = { node, netns, netnsPath: path.join("/run/netns", netns), varLibDir };
    this.#nodes.set(node.name, network);
    return network;
  }

  node(name: string): NodeNetwork | undefined {
    return this.#nodes.get(name);
  }

  nodes(): NodeNetwork[] {
    return [...this.#nodes.values()];
  }

  /**
   * Gives every bridge on the node other than the default network's a vxlan
   * port, so the same-named bridges of all nodes form one L2 network.
   * Idempotent; calls for one node run one at a time.
   */
  connectBridges(nodeName: string): Promise<void> {
    const network = this.#nodes.get(nodeName);
    if (!network) return Promise.reject(new Error(`node ${nodeName} has no network`));
    const previous = this.#nodeLocks.get(nodeName) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#connectBridges(network));
    this.#nodeLocks.set(nodeName, next);
    return next;
  }

  async #connectBridges(network: NodeNetwork) {
    const links = JSON.parse(await ipIn(network.netns, "-d", "-j", "link", "show")) as IpLink[];
    const bridges = links.filter((link) => link.linkinfo?.info_kind === "bridge" && link.ifname !== defaultBridge);
    for (const bridge of bridges) {
      const vni = vniOf(bridge.ifname);
      const vxlan = `vx${vni}`;
      const port = links.find((link) => link.ifname === vxlan);
      if (!port) {
        await ipIn(network.netns, "link", "add", vxlan, "type", "vxlan", "id", String(vni), "group", vxlanGroup, "dev", "eth0", "dstport", vxlanPort);
      }
      if (port?.master !== bridge.ifname) await ipIn(network.netns, "link", "set", vxlan, "master", bridge.ifname);
      await ipIn(network.netns, "link", "set", vxlan, "up");
    }
  }
}

type IpLink = { ifname: string; master?: string; linkinfo?: { info_kind?: string } };

/** The same bridge name gets the same VNI on every node. */
export function vniOf(bridgeName: string): number {
  return (createHash("sha256").update(bridgeName).digest().readUInt32BE(0) % 16_000_000) + 1;
}

/** `ip -n <netns> ...args`, resolving with its output. */
export function ipIn(netns: string, ...args: string[]): Promise<string> {
  return mustRun(["ip", "-n", netns, ...args]);
}
