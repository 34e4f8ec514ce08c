// node reports -> the merged view of one NetService, which every desired
// object of that NetService is built from.
import type { NetService, ReportSpec } from "./api.ts";
import { canonicalAddress, compareAddresses } from "./addresses.ts";
import { compareText } from "./order.ts";
import { endpointReady } from "./readiness.ts";

/**
 * One report object of a node. nodeUid is the uid of the Node the report
 * names as its owner (ownerReferences): a report of an earlier Node of the
 * same name is no report of this one.
 */
export type NodeReport = { nodeName: string; nodeUid?: string; spec: ReportSpec };

/** Why a node's endpoints are not serving (aggregator/node-liveness.ts). */
export type NodeProblem = "NodeNotReady" | "NodeUnreachable" | "AgentHeartbeatStale" | "AgentHeartbeatMissing";

/** A Node as the merge needs it; a node missing from the lookup does not exist. */
export type NodeHealth = {
  /** The Node's uid; reports owned by another uid are ignored. Undefined: any report of the name counts. */
  uid?: string;
  /** Ready, reachable, and its agent alive: otherwise its endpoints are published not serving. */
  serving: boolean;
  problem?: NodeProblem;
  /** topology.kubernetes.io/zone */
  zone?: string;
};

export interface NodeLookup {
  get(nodeName: string): NodeHealth | undefined;
  readonly size: number;
}

/** Every named node exists and serves (tests, and callers that know nothing of node health). */
export function healthyNodes(names: Iterable<string>): NodeLookup {
  return new Map([...names].map((name): [string, NodeHealth] => [name, { serving: true }]));
}

export type MergedEndpoint = {
  pod: { namespace: string; name: string; uid: string };
  nodeName: string;
  /** The node's topology.kubernetes.io/zone. */
  zone?: string;
  hostname?: string;
  /** Canonical, distinct, sorted. */
  addresses: string[];
  serving: boolean;
  terminating: boolean;
  /** As the NetService publishes it: accounts for publishNotReadyAddresses. */
  ready: boolean;
};

export type MergedNetService = {
  /** One per pod, sorted by pod namespace/name. */
  endpoints: MergedEndpoint[];
  /** Pods whose addresses are ready; a pod counts once however many addresses it has. */
  readyEndpoints: number;
  notReadyEndpoints: number;
  /**
   * Live nodes whose reports have an entry for this NetService. Agents send
   * entries only for NetServices with endpoints on their node, so these are
   * the nodes the endpoints come from.
   */
  nodesReporting: number;
  /** Live nodes with a report at all (an agent that has published), and how many nodes are live. */
  agents: { reporting: number; liveNodes: number };
  /**
   * Live nodes whose entry was computed from an older generation of the
   * NetService (an edited selector or network not yet seen by that agent).
   * Their endpoints are still included, since dropping them would blip DNS.
   */
  staleNodes: string[];
  /** The oldest generation those stale entries were computed from; absent when no node is stale. */
  oldestGeneration?: number;
  /** Nodes with an entry for this NetService whose endpoints are published not serving, and why, by name. */
  unservedNodes: { name: string; problem: NodeProblem }[];
  /** The newest triggerTime among the reports with an entry for this NetService (none later than now). */
  triggerTime?: string;
};

/**
 * Merges what the nodes report for one NetService.
 *
 * Reports of nodes that do not exist are ignored (the node is gone, its pods
 * with it), as are reports owned by an earlier Node of the same name, and
 * entries for another NetService of the same name (a deleted and recreated
 * one: different uid). The endpoints of a node that does not serve (NotReady,
 * unreachable, or its agent silent) are published not serving. A pod found in
 * several reports (a stale report of the node it left, or a StatefulSet pod
 * recreated elsewhere under the same name) appears once, from the report with
 * the newest triggerTime; a triggerTime later than `now` counts as `now`, so
 * a report cannot win by claiming the future.
 *
 * The reports are only as trustworthy as the agents, so addresses are checked
 * again: one invalid address would make the API server reject the whole
 * Endpoints or EndpointSlice write.
 */
export function mergeReports(
  netService: NetService,
  reports: readonly NodeReport[],
  nodes: NodeLookup,
  now: number = Date.now(),
): MergedNetService {
  const { namespace, uid, generation } = netService.metadata;
  const families = netService.spec.ipFamilies?.length ? new Set(netService.spec.ipFamilies) : undefined;
  const chosen = new Map<string, { endpoint: MergedEndpoint; time: number }>();
  const reporting = new Set<string>();
  const agents = new Set<string>();
  const stale = new Set<string>();
  const unserved = new Map<string, NodeProblem>();
  let newestTrigger: { text: string; time: number } | undefined;
  let oldestGeneration: number | undefined;

  for (const { nodeName, nodeUid, spec } of reports) {
    const node = nodes.get(nodeName);
    if (!node || (node.uid !== undefined && node.uid !== nodeUid)) continue;
    agents.add(nodeName);
    const time = Math.min(triggerTimeOf(spec), now);
    for (const entry of spec.netServices) {
      if (entry.uid !== uid || entry.namespace !== namespace) continue;
      reporting.add(nodeName);
      if (!node.serving) unserved.set(nodeName, node.problem ?? "NodeNotReady");
      if (entry.generation < generation) {
        stale.add(nodeName);
        oldestGeneration = Math.min(oldestGeneration ?? entry.generation, entry.generation);
      }
      if (spec.triggerTime && (!newestTrigger || time > newestTrigger.time)) {
        newestTrigger = { text: time < triggerTimeOf(spec) ? new Date(time).toISOString() : spec.triggerTime, time };
      }
      for (const reported of entry.endpoints) {
        const pod = spec.pods[reported.pod];
        if (!pod || pod.namespace !== namespace) continue;
        const addresses = publishableAddresses(reported.addresses, families);
        if (addresses.length === 0) continue;
        const previous = chosen.get(pod.name);
        if (previous && !supersedes(time, nodeName, previous.time, previous.endpoint.nodeName)) continue;
        const serving = pod.serving && node.serving;
        chosen.set(pod.name, {
          time,
          endpoint: {
            pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
            nodeName,
            ...(node.zone ? { zone: node.zone } : {}),
            // As upstream: the pod's hostname is published by the Service its subdomain names, and no other.
            ...(pod.hostname && pod.subdomain === netService.metadata.name ? { hostname: pod.hostname } : {}),
            addresses,
            serving,
            terminating: pod.terminating,
            ready: endpointReady(serving, pod.terminating, netService.spec.publishNotReadyAddresses),
          },
        });
      }
    }
  }

  const endpoints = [...chosen.values()]
    .map(({ endpoint }) => endpoint)
    .sort((a, b) => compareText(a.pod.name, b.pod.name));
  const readyEndpoints = endpoints.filter((endpoint) => endpoint.ready).length;
  return {
    endpoints,
    readyEndpoints,
    notReadyEndpoints: endpoints.length - readyEndpoints,
    nodesReporting: reporting.size,
    agents: { reporting: agents.size, liveNodes: nodes.size },
    staleNodes: [...stale].sort(compareText),
    ...(oldestGeneration !== undefined ? { oldestGeneration } : {}),
    unservedNodes: [...unserved]
      .map(([name, problem]) => ({ name, problem }))
      .sort((a, b) => compareText(a.name, b.name)),
    ...(newestTrigger ? { triggerTime: newestTrigger.text } : {}),
  };
}

// Unparsable or missing trigger times count as the oldest.
function triggerTimeOf(spec: ReportSpec): number {
  const time = spec.triggerTime ? Date.parse(spec.triggerTime) : Number.NaN;
  return Number.isNaN(time) ? Number.NEGATIVE_INFINITY : time;
}

// The newer report wins; on a tie the node name decides, so the result does not
// depend on the order the reports were listed in.
function supersedes(time: number, nodeName: string, previousTime: number, previousNode: string): boolean {
  return time > previousTime || (time === previousTime && nodeName < previousNode);
}

function publishableAddresses(
  reported: readonly string[],
  families: ReadonlySet<string> | undefined,
): string[] {
  const addresses = new Set<string>();
  for (const text of reported) {
    const canonical = canonicalAddress(text);
    if (canonical && (!families || families.has(canonical.family))) addresses.add(canonical.address);
  }
  return [...addresses].sort(compareAddresses);
}
