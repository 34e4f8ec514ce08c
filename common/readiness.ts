// Pod readiness as the EndpointSlice controller computes it, so our endpoints
// behave exactly like those of an ordinary Service.
import type { V1Pod } from "@kubernetes/client-node";

export type PodReadiness = {
  /** The pod's Ready condition is True. */
  serving: boolean;
  /** The pod is being deleted (deletionTimestamp is set). */
  terminating: boolean;
};

export function podReadiness(pod: V1Pod): PodReadiness {
  const ready = pod.status?.conditions?.find((condition) => condition.type === "Ready");
  return {
    serving: ready?.status === "True",
    terminating: Boolean(pod.metadata?.deletionTimestamp),
  };
}

/**
 * A terminating pod is never ready, even while it still serves, so clients
 * stop picking it; publishNotReadyAddresses overrides both (StatefulSet peers
 * must find each other before they are ready).
 */
export function endpointReady(
  serving: boolean,
  terminating: boolean,
  publishNotReadyAddresses: boolean,
): boolean {
  return publishNotReadyAddresses || (serving && !terminating);
}

/**
 * A pod that has run to completion contributes no endpoints at all: its
 * addresses may already belong to another pod. Upstream drops these too.
 */
export function isPodFinished(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}
