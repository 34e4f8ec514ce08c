// pod -> the addresses it contributes to one NetService.
import type { V1Pod } from "@kubernetes/client-node";
import { annotations, type NetService } from "./api.ts";
import { canonicalAddress, compareAddresses } from "./addresses.ts";
import { parseNetworkStatus, type Attachment } from "./network-status.ts";
import { matchesNetAttachDef, parseNetworksRequest, type RequestedNetwork } from "./networks.ts";
import { isPodFinished } from "./readiness.ts";
import { selectorMatches } from "./selector.ts";

/**
 * At most this many addresses of one pod are published per NetService: an
 * EndpointSlice endpoint may hold no more (and the node report's schema says
 * the same), so a pod with more would otherwise make the API server refuse
 * its node's whole report.
 */
export const maxAddressesPerPod = 100;

export type PodEndpoints = {
  /** Canonical, distinct, sorted (IPv4 first, then numerically); at most maxAddressesPerPod. */
  addresses: string[];
  /** How many addresses the pod has on the network when that is more than maxAddressesPerPod (the rest are left out). */
  leftOutOf?: number;
  /**
   * What is wrong with the pod's Multus annotations, when the NetService
   * selects the pod: the caller warns with an Event on the pod.
   */
  error?: string;
};

/**
 * The addresses a pod contributes to a NetService: every address of every
 * attachment to the NetService's network (a pod attached twice contributes
 * both), restricted to spec.ipFamilies when set, and the first
 * maxAddressesPerPod of them in address order.
 *
 * A pod outside the NetService's namespace, not selected, finished, or with a
 * malformed network-status contributes nothing.
 */
export function endpointsForPod(pod: V1Pod, netService: NetService): PodEndpoints {
  return endpointsFromPodNetworks(podNetworks(pod), netService);
}

/** What endpointsFromPodNetworks needs of a pod, parsed once for any number of NetServices. */
export type PodNetworks = {
  namespace: string;
  labels: Record<string, string>;
  finished: boolean;
  attachments: Attachment[];
  requested: RequestedNetwork[];
  error?: string;
};

/**
 * Parses a pod's Multus annotations once, so a node with thousands of
 * NetServices does not parse a large annotation thousands of times.
 */
export function podNetworks(pod: V1Pod): PodNetworks {
  const namespace = pod.metadata?.namespace ?? "";
  const podAnnotations = pod.metadata?.annotations;
  const status = parseNetworkStatus(podAnnotations);
  // A malformed request only loses the namespaces it named; the pod's own
  // namespace and exact names still match, so it stays a warning.
  const request = parseNetworksRequest(podAnnotations?.[annotations.networksRequest], namespace);
  const error = status.ok ? request.error : status.error;
  return {
    namespace,
    labels: pod.metadata?.labels ?? {},
    finished: isPodFinished(pod),
    attachments: status.ok ? status.attachments : [],
    requested: request.networks,
    ...(error !== undefined ? { error } : {}),
  };
}

export function endpointsFromPodNetworks(pod: PodNetworks, netService: NetService): PodEndpoints {
  const { namespace } = netService.metadata;
  const { netAttachDef, selector, ipFamilies } = netService.spec;
  if (pod.namespace !== namespace || pod.finished || !selectorMatches(selector, pod.labels)) {
    return { addresses: [] };
  }
  // An empty list restricts nothing, like an absent one: publishing no family
  // at all is never what a user means.
  const families = ipFamilies?.length ? new Set(ipFamilies) : undefined;
  const addresses = new Set<string>();
  for (const attachment of pod.attachments) {
    if (!matchesNetAttachDef(attachment.name, netAttachDef, namespace, pod.requested, pod.namespace)) {
      continue;
    }
    for (const ip of attachment.ips) {
      const canonical = canonicalAddress(ip);
      if (canonical && (!families || families.has(canonical.family))) addresses.add(canonical.address);
    }
  }
  const sorted = [...addresses].sort(compareAddresses);
  return {
    addresses: sorted.length > maxAddressesPerPod ? sorted.slice(0, maxAddressesPerPod) : sorted,
    ...(sorted.length > maxAddressesPerPod ? { leftOutOf: sorted.length } : {}),
    ...(pod.error !== undefined ? { error: pod.error } : {}),
  };
}
