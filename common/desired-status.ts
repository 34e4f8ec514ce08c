// merged view + problems -> the NetService's status.
import { netServiceConditionReasons, type NetService } from "./api.ts";
import { jsonEqual } from "./json-equal.ts";
import { metaTime } from "./kube/time.ts";
import type { MergedNetService, NodeProblem } from "./merge.ts";

/** metav1.Condition as it travels in JSON. */
export type Condition = {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
};

export type NetServiceStatus = {
  observedGeneration: number;
  conditions: Condition[];
  readyEndpoints: number;
  notReadyEndpoints: number;
  nodesReporting: number;
};

export type ConditionReason = (typeof netServiceConditionReasons)[keyof typeof netServiceConditionReasons];

/** Something the user can fix, found by the aggregator while applying this NetService. */
export type StatusProblem = { reason: ConditionReason; message: string };

export const readyConditionType = "Ready";

/**
 * False while some node with endpoints of the NetService does not serve
 * (Node NotReady or unreachable, agent heartbeat stale): its endpoints are
 * published not ready until it recovers.
 */
export const nodesHealthyConditionType = "NodesHealthy";
export const nodesHealthyReasons = { healthy: "AllNodesHealthy", unhealthy: "NodesUnhealthy" } as const;

/**
 * The status to apply. `Ready` is True once the endpoints are published; a
 * problem (the first one gives the reason) or the absence of any endpoint
 * makes it False, with a message that says what to fix.
 *
 * lastTransitionTime changes only when the condition's status does, as
 * metav1.Condition requires, so `previousConditions` (the current status)
 * is an input and `now` is only used on a transition.
 *
 * observedGeneration claims that what is published follows that generation
 * of the spec: while some node's entry was computed from an older one (its
 * agent has not seen the edit yet), it says the oldest such generation, so
 * `observedGeneration == metadata.generation` means converged.
 */
export function desiredStatus(
  netService: NetService,
  merged: MergedNetService,
  problems: readonly StatusProblem[],
  previousConditions: readonly Condition[] | undefined,
  now: Date,
): NetServiceStatus {
  const generation = merged.oldestGeneration ?? netService.metadata.generation;
  const condition = (type: string, { status, reason, message }: Pick<Condition, "status" | "reason" | "message">): Condition => {
    const previous = previousConditions?.find((each) => each.type === type);
    const lastTransitionTime = previous && previous.status === status ? previous.lastTransitionTime : metaTime(now.getTime());
    return { type, status, observedGeneration: generation, lastTransitionTime, reason, message };
  };
  return {
    observedGeneration: generation,
    conditions: [
      condition(readyConditionType, readiness(netService, merged, problems)),
      condition(nodesHealthyConditionType, nodesHealthy(merged)),
    ],
    readyEndpoints: merged.readyEndpoints,
    notReadyEndpoints: merged.notReadyEndpoints,
    nodesReporting: merged.nodesReporting,
  };
}

/** Whether applying `desired` would change the status; lastTransitionTime follows the rest. */
export function statusNeedsWrite(
  desired: NetServiceStatus,
  existing: Partial<NetServiceStatus> | undefined,
): boolean {
  if (!existing) return true;
  const comparable = (status: Partial<NetServiceStatus>) => ({
    observedGeneration: status.observedGeneration,
    readyEndpoints: status.readyEndpoints,
    notReadyEndpoints: status.notReadyEndpoints,
    nodesReporting: status.nodesReporting,
    conditions: (status.conditions ?? [])
      .map(({ type, status: conditionStatus, observedGeneration, reason, message }) => ({
        type,
        status: conditionStatus,
        observedGeneration,
        reason,
        message,
      })),
  });
  return !jsonEqual(comparable(desired), comparable(existing));
}

function readiness(
  netService: NetService,
  merged: MergedNetService,
  problems: readonly StatusProblem[],
): Pick<Condition, "status" | "reason" | "message"> {
  const [first] = problems;
  if (first) {
    return {
      status: "False",
      reason: first.reason,
      message: problems.map((problem) => problem.message).join("; "),
    };
  }
  if (merged.endpoints.length === 0) {
    const { netAttachDef, selector } = netService.spec;
    return {
      status: "False",
      reason: netServiceConditionReasons.noMatchingPods,
      message:
        `no pod selected by ${formatSelector(selector)} has an address on network ${netAttachDef} ` +
        `(agents on ${merged.agents.reporting} of ${merged.agents.liveNodes} nodes have reported); ` +
        `check the selector and that the pods request ${netAttachDef} in k8s.v1.cni.cncf.io/networks`,
    };
  }
  const behind =
    merged.staleNodes.length > 0
      ? `; ${merged.staleNodes.length} nodes (${merged.staleNodes.slice(0, 5).join(", ")}${merged.staleNodes.length > 5 ? ", ..." : ""}) ` +
        `still publish from generation ${merged.oldestGeneration}, not ${netService.metadata.generation}`
      : "";
  return {
    status: "True",
    reason: netServiceConditionReasons.ready,
    message:
      `${merged.readyEndpoints} ready and ${merged.notReadyEndpoints} not ready pods ` +
      `published from ${merged.nodesReporting} nodes${behind}`,
  };
}

const problemText: Record<NodeProblem, string> = {
  NodeNotReady: "its Node is not Ready",
  NodeUnreachable: "its Node is unreachable",
  AgentHeartbeatStale: "its netservice-agent stopped renewing its heartbeat",
  AgentHeartbeatMissing: "no netservice-agent heartbeat from it",
};

function nodesHealthy(merged: MergedNetService): Pick<Condition, "status" | "reason" | "message"> {
  const unserved = merged.unservedNodes;
  if (unserved.length === 0) {
    return { status: "True", reason: nodesHealthyReasons.healthy, message: "every node with endpoints of this NetService is Ready and its agent alive" };
  }
  const shown = unserved.slice(0, 10).map(({ name, problem }) => `${name} (${problemText[problem]})`);
  const more = unserved.length > shown.length ? ` and ${unserved.length - shown.length} more` : "";
  return {
    status: "False",
    reason: nodesHealthyReasons.unhealthy,
    message:
      `the endpoints on ${unserved.length} nodes are published not ready: ${shown.join(", ")}${more}; ` +
      "they return when the node is Ready and its netservice-agent runs (kubectl get nodes; kubectl -n netservice-system get pods -o wide)",
  };
}

function formatSelector(selector: Readonly<Record<string, string>>): string {
  const terms = Object.entries(selector)
    .map(([key, value]) => `${key}=${value}`)
    .sort();
  return terms.length > 0 ? terms.join(",") : "an empty selector (which selects nothing)";
}
