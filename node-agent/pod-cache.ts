// What the agent keeps of each pod of its node. A pod's full object (container
// specs, volumes, container statuses, last-applied-configuration) is most of
// its size and none of the report's input; a benchmark runs a thousand agents
// in one process, so the cache keeps only what the report and the warnings read.
import type { KubeObject } from "../common/kube/object.ts";
import { annotations } from "../common/api.ts";
import { jsonEqual } from "../common/json-equal.ts";

const keptAnnotations: readonly string[] = [
  annotations.networkStatus,
  annotations.legacyNetworkStatus,
  annotations.networksRequest,
];

/**
 * The pod as the agent caches it: identity, labels, deletion, the Multus
 * annotations, spec.hostname/subdomain/nodeName and status phase, conditions
 * and pod IPs. Everything common/node-report.ts and pod-warnings.ts read.
 */
export function slimPod(pod: KubeObject): KubeObject {
  const metadata = pod.metadata ?? {};
  const spec = record(pod.spec);
  const status = record(pod.status);
  return {
    ...(pod.apiVersion ? { apiVersion: pod.apiVersion } : {}),
    ...(pod.kind ? { kind: pod.kind } : {}),
    metadata: definedOnly({
      namespace: metadata.namespace,
      name: metadata.name,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
      generation: metadata.generation,
      creationTimestamp: metadata.creationTimestamp,
      deletionTimestamp: metadata.deletionTimestamp,
      labels: metadata.labels,
      annotations: multusAnnotations(metadata.annotations),
    }),
    spec: definedOnly({ nodeName: spec.nodeName, hostname: spec.hostname, subdomain: spec.subdomain }),
    status: definedOnly({
      phase: status.phase,
      conditions: status.conditions,
      podIP: status.podIP,
      podIPs: status.podIPs,
    }),
  };
}

/**
 * Whether an update of a cached (slimmed) pod can change the report or the
 * warnings: most pod updates (container statuses, probes' timestamps in
 * fields the cache drops) change nothing the agent keeps.
 */
export function podChangeMatters(old: KubeObject, updated: KubeObject): boolean {
  return !jsonEqual(withoutVersion(old), withoutVersion(updated));
}

function withoutVersion(pod: KubeObject): KubeObject {
  return { ...pod, metadata: { ...pod.metadata, resourceVersion: undefined } };
}

function multusAnnotations(all: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!all) return undefined;
  const kept: Record<string, string> = {};
  for (const key of keptAnnotations) {
    const value = all[key];
    if (value !== undefined) kept[key] = value;
  }
  return kept;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

function definedOnly<T extends Record<string, unknown>>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as T;
}
