// Whether a node's endpoints may be published as serving: the Node says it is
// Ready and reachable, and the node's agent renews its heartbeat. Kubernetes
// reaches the same outcome for primary addresses through the node lifecycle
// controller; a dead node's agent can send no pod update, so the aggregator
// must act on the Node and the heartbeat themselves.
//
//   slimNode(node)            informer transform: name, uid, readiness, unreachable taint, zone; nothing else
//   slimHeartbeat(lease)      informer transform for the agents' heartbeat Leases
//   nodeHealth(...)           the pure rule
//   new NodeLiveness({heartbeatTimeoutMs, startedAt})
//     node(name, view)            a Node event; returns whether the node's health changed
//     heartbeat(name, view, now)  a heartbeat Lease event; returns whether the node's health changed
//     health(name, now)           the node's health, or undefined when no such Node exists
//     expire(now)                 nodes whose heartbeat went stale (or fresh) since the last call
//     unhealthy(now)              every node that is not serving, for the metric
import type { KubeObject } from "../common/kube/object.ts";
import type { NodeHealth, NodeProblem } from "../common/merge.ts";

export const unreachableTaint = "node.kubernetes.io/unreachable";
export const zoneLabel = "topology.kubernetes.io/zone";

/** What the aggregator keeps of a Node: enough to decide its health and publish its zone. */
export type NodeView = KubeObject & {
  metadata: { name: string; uid: string; resourceVersion?: string };
  /** The Ready condition's status; undefined when the node has posted none. */
  ready?: "True" | "False" | "Unknown";
  unreachable: boolean;
  zone?: string;
};

/** What the aggregator keeps of an agent's heartbeat Lease. */
export type HeartbeatView = KubeObject & {
  metadata: { name: string; uid: string; resourceVersion?: string };
  renewTime?: string;
  /** The uid of the Node the Lease names as its owner: a Lease of an earlier Node of that name is no heartbeat. */
  nodeUid?: string;
};

type RawNode = KubeObject & {
  spec?: { taints?: { key?: string; effect?: string }[] };
  status?: { conditions?: { type?: string; status?: string }[] };
};

export function slimNode(raw: KubeObject): NodeView {
  const node = raw as RawNode;
  const ready = node.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
  const zone = node.metadata?.labels?.[zoneLabel];
  return {
    ...identity(node),
    ...(ready === "True" || ready === "False" || ready === "Unknown" ? { ready } : {}),
    unreachable: (node.spec?.taints ?? []).some((taint) => taint.key === unreachableTaint),
    ...(zone ? { zone } : {}),
  };
}

/** What a slim view keeps of any object: enough for the informer's cache (key, resourceVersion) and the uid. */
function identity(object: KubeObject) {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: {
      name: object.metadata?.name ?? "",
      uid: object.metadata?.uid ?? "",
      ...(object.metadata?.resourceVersion ? { resourceVersion: object.metadata.resourceVersion } : {}),
    },
  };
}

type RawLease = KubeObject & { spec?: { renewTime?: string } };

export function slimHeartbeat(raw: KubeObject): HeartbeatView {
  const lease = raw as RawLease;
  const owner = lease.metadata?.ownerReferences?.find((ref) => ref.kind === "Node" && ref.apiVersion === "v1");
  return {
    ...identity(lease),
    ...(lease.spec?.renewTime ? { renewTime: lease.spec.renewTime } : {}),
    ...(owner?.uid ? { nodeUid: owner.uid } : {}),
  };
}

/** When the aggregator last saw a node's heartbeat renewed, on its own clock. */
export type HeartbeatSeen = { renewTime: string; nodeUid?: string; observedAt: number };

export type LivenessOptions = {
  /** A heartbeat not renewed for this long makes the node's endpoints not serving; 0 ignores heartbeats. */
  heartbeatTimeoutMs: number;
  /** When the aggregator started watching: a node whose heartbeat it has not seen yet counts from here. */
  startedAt: number;
};

/**
 * A node serves when its Ready condition is not False or Unknown (a node that
 * has posted no condition yet is given the benefit of the doubt, as the node
 * lifecycle controller does until its grace period passes), it carries no
 * unreachable taint, and its agent's heartbeat was renewed within the
 * timeout. Staleness is measured on the aggregator's clock from when it saw
 * the renewal, never from the time the agent wrote: a node's clock (or a
 * forged renewTime) cannot keep it alive.
 */
export function nodeHealth(
  node: NodeView,
  heartbeat: HeartbeatSeen | undefined,
  now: number,
  options: LivenessOptions,
): NodeHealth {
  const base = { uid: node.metadata.uid, ...(node.zone ? { zone: node.zone } : {}) };
  const problem = nodeProblem(node, heartbeat, now, options);
  return problem ? { ...base, serving: false, problem } : { ...base, serving: true };
}

function nodeProblem(
  node: NodeView,
  heartbeat: HeartbeatSeen | undefined,
  now: number,
  options: LivenessOptions,
): NodeProblem | undefined {
  if (node.ready === "False" || node.ready === "Unknown") return "NodeNotReady";
  if (node.unreachable) return "NodeUnreachable";
  if (options.heartbeatTimeoutMs <= 0) return undefined;
  const current = heartbeat && (heartbeat.nodeUid === undefined || heartbeat.nodeUid === node.metadata.uid) ? heartbeat : undefined;
  const since = current ? current.observedAt : options.startedAt;
  if (now - since < options.heartbeatTimeoutMs) return undefined;
  return current ? "AgentHeartbeatStale" : "AgentHeartbeatMissing";
}

/**
 * The nodes and heartbeats the aggregator has seen, and the health it last
 * published for each node, so that only a change of health wakes the
 * NetServices of that node.
 */
export class NodeLiveness {
  private readonly options: LivenessOptions;
  private readonly nodes = new Map<string, NodeView>();
  private readonly heartbeats = new Map<string, HeartbeatSeen>();
  private readonly last = new Map<string, string>();

  constructor(options: LivenessOptions) {
    this.options = options;
  }

  /** A Node added, changed or (view undefined) deleted. */
  node(name: string, view: NodeView | undefined, now: number): boolean {
    if (view) this.nodes.set(name, view);
    else this.nodes.delete(name);
    return this.settle(name, now);
  }

  /** A heartbeat Lease added, renewed or (view undefined) deleted. */
  heartbeat(name: string, view: HeartbeatView | undefined, now: number): boolean {
    const previous = this.heartbeats.get(name);
    if (!view?.renewTime) this.heartbeats.delete(name);
    else if (previous?.renewTime !== view.renewTime || previous.nodeUid !== view.nodeUid) {
      this.heartbeats.set(name, { renewTime: view.renewTime, ...(view.nodeUid ? { nodeUid: view.nodeUid } : {}), observedAt: now });
    }
    return this.settle(name, now);
  }

  health(name: string, now: number): NodeHealth | undefined {
    const node = this.nodes.get(name);
    return node ? nodeHealth(node, this.heartbeats.get(name), now, this.options) : undefined;
  }

  /** Nodes whose health changed with the passing of time alone (a heartbeat went stale). */
  expire(now: number): string[] {
    return [...this.nodes.keys()].filter((name) => this.settle(name, now));
  }

  /** Nodes not serving now, with why. */
  unhealthy(now: number): { name: string; problem: NodeProblem }[] {
    const result: { name: string; problem: NodeProblem }[] = [];
    for (const name of this.nodes.keys()) {
      const health = this.health(name, now);
      if (health?.problem) result.push({ name, problem: health.problem });
    }
    return result;
  }

  private settle(name: string, now: number): boolean {
    const health = this.health(name, now);
    const signature = health ? JSON.stringify(health) : undefined;
    if (signature === this.last.get(name)) return false;
    if (signature === undefined) this.last.delete(name);
    else this.last.set(name, signature);
    return true;
  }
}
