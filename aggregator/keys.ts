// Informer events -> the NetService keys ("namespace/name") to reconcile.
// Handlers only enqueue keys; these functions decide which.
import { apiVersion, labels, netServiceKind, type ReportSpec } from "../common/api.ts";
import type { KubeObject } from "../common/kube/object.ts";

export function netServiceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * The NetServices whose part of a node report changed between two versions
 * of it (undefined: no report, or one that did not parse). An entry counts as
 * changed when it appears, disappears, or publishes something else (uid,
 * generation, or any endpoint with the pod it points to). triggerTime alone
 * changes nothing: the agent stamps it on every write, and a NetService whose
 * entry is the same would reconcile to the same objects.
 */
export function changedNetServiceKeys(
  previous: ReportSpec | undefined,
  next: ReportSpec | undefined,
): string[] {
  const before = entriesByKey(previous);
  const after = entriesByKey(next);
  const changed: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(key) !== after.get(key)) changed.push(key);
  }
  return changed.sort();
}

/**
 * The NetService an owned Service, Endpoints or EndpointSlice belongs to: its
 * controlling NetService if it has one, else the one its label names (an
 * object that merely carries the label may be in a NetService's way, and that
 * NetService wants to hear when it goes).
 */
export function ownerKeyOf(object: KubeObject): string | undefined {
  const namespace = object.metadata?.namespace;
  if (!namespace) return undefined;
  const controller = object.metadata?.ownerReferences?.find((reference) => reference.controller === true);
  if (controller?.kind === netServiceKind && controller.apiVersion === apiVersion) {
    return netServiceKey(namespace, controller.name);
  }
  const labelled = object.metadata?.labels?.[labels.netService];
  return labelled ? netServiceKey(namespace, labelled) : undefined;
}

/** Per NetService key, a canonical text of everything the report says about it. */
function entriesByKey(spec: ReportSpec | undefined): Map<string, string> {
  const grouped = new Map<string, unknown[]>();
  for (const entry of spec?.netServices ?? []) {
    const key = netServiceKey(entry.namespace, entry.name);
    const resolved = {
      uid: entry.uid,
      generation: entry.generation,
      endpoints: entry.endpoints.map((endpoint) => ({
        pod: spec?.pods[endpoint.pod] ?? null,
        addresses: endpoint.addresses,
      })),
    };
    const group = grouped.get(key);
    if (group) group.push(resolved);
    else grouped.set(key, [resolved]);
  }
  return new Map([...grouped].map(([key, entries]) => [key, JSON.stringify(entries)]));
}
