// The report as a Kubernetes object: what the agent applies, what it makes of
// the copy on the server, and whether the two differ.
import { apiVersion, labels, reportKind, reportSpecSchema, type ReportSpec } from "../common/api.ts";
import { reportsEqual } from "../common/node-report.ts";
import { reportPartName } from "../common/report-parts.ts";
import type { KubeObject } from "../common/kube/object.ts";
import { nodeOwnerReference } from "./heartbeat.ts";

/**
 * Part `part` of a node's report, named `<node>.<part>` (report-parts.ts).
 * It is owned by the Node (uid `nodeUid`): deleted with it, and
 * ignored by the aggregator once a new Node of the same name exists.
 */
export function reportObject(nodeName: string, namespace: string, spec: ReportSpec, part: number, nodeUid: string): KubeObject {
  const label = nodeNameLabel(nodeName);
  return {
    apiVersion,
    kind: reportKind,
    metadata: {
      name: reportPartName(nodeName, part),
      namespace,
      ...(label !== undefined ? { labels: { [labels.nodeName]: label } } : {}),
      ownerReferences: [nodeOwnerReference(nodeName, nodeUid)],
    },
    spec,
  };
}

/** What the agent needs to know of the report stored on the server. */
export type StoredReport = {
  uid: string;
  /** undefined when the stored spec does not parse (written by something else, or an older agent). */
  spec: ReportSpec | undefined;
  /** The node-name label is present and right. */
  labelled: boolean;
  /** The uid of the Node the stored report names as its owner. */
  nodeUid: string | undefined;
};

export function storedReport(obj: KubeObject, nodeName: string): StoredReport {
  const parsed = reportSpecSchema.safeParse(obj.spec);
  return {
    uid: obj.metadata?.uid ?? "",
    spec: parsed.success ? parsed.data : undefined,
    labelled: obj.metadata?.labels?.[labels.nodeName] === nodeNameLabel(nodeName),
    nodeUid: obj.metadata?.ownerReferences?.find((ref) => ref.kind === "Node" && ref.apiVersion === "v1")?.uid,
  };
}

/**
 * Whether the report must be written: there is none, or the stored one
 * publishes something else (triggerTime alone does not count), or it lacks
 * its label or its owner (the Node of uid `nodeUid`).
 */
export function reportNeedsWrite(desired: ReportSpec, stored: StoredReport | null, nodeUid: string): boolean {
  if (stored === null || stored.spec === undefined || !stored.labelled || stored.nodeUid !== nodeUid) return true;
  return !reportsEqual(desired, stored.spec);
}

/**
 * The node-name label's value: the node name, unless it cannot be a label
 * value (node names may be 253-character DNS subdomains, label values at most
 * 63 characters); then no label, and spec.nodeName alone says which node.
 */
export function nodeNameLabel(nodeName: string): string | undefined {
  return nodeName.length <= 63 && /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(nodeName) ? nodeName : undefined;
}

/** spec.triggerTime: RFC 3339 in UTC with milliseconds. */
export function formatTriggerTime(ms: number): string {
  return new Date(ms).toISOString();
}
