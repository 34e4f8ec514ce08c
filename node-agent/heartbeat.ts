// The agent's heartbeat: a Lease named after its node in the system
// namespace, renewed every few seconds while the agent works. The aggregator
// publishes a node's endpoints not ready once the heartbeat is older than its
// timeout (aggregator/node-liveness.ts), so a crashed, hung or partitioned
// agent cannot leave its node's last report in DNS as if it were current.
// The Lease is owned by the Node, so the garbage collector removes it with
// the Node, and the admission policy lets an agent write only its own node's.
//
//   heartbeatLease(nodeName, namespace, nodeUid, now, durationSeconds)   the object to apply
import { labels } from "../common/api.ts";
import type { KubeObject } from "../common/kube/object.ts";
import { microTime } from "../common/kube/time.ts";
import { nodeNameLabel } from "./report-object.ts";

/** Default renew interval; the aggregator's default timeout (40 s) allows three missed renewals. */
export const defaultHeartbeatIntervalMs = 10_000;

export function heartbeatLease(nodeName: string, namespace: string, nodeUid: string, now: number, durationSeconds: number): KubeObject {
  const label = nodeNameLabel(nodeName);
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: nodeName,
      namespace,
      labels: { [labels.agentHeartbeat]: "true", ...(label !== undefined ? { [labels.nodeName]: label } : {}) },
      ownerReferences: [nodeOwnerReference(nodeName, nodeUid)],
    },
    spec: {
      holderIdentity: `netservice-agent-${nodeName}`.slice(0, 253),
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime(now),
    },
  } as KubeObject;
}

/**
 * The reports and the heartbeat belong to the Node: deleting it deletes them
 * (garbage collector), and the aggregator ignores those owned by an earlier
 * Node of the same name. No blockOwnerDeletion: a node's agent must not be
 * able to hold up the deletion of its Node.
 */
export function nodeOwnerReference(nodeName: string, nodeUid: string): { apiVersion: string; kind: string; name: string; uid: string } {
  return { apiVersion: "v1", kind: "Node", name: nodeName, uid: nodeUid };
}
