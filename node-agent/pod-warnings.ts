// pod with a broken Multus annotation -> the warning the agent records on it.
// Pure: the agent decides when to emit (see warning-limiter.ts).
import type { V1Pod } from "@kubernetes/client-node";
import { annotations, type NetService } from "../common/api.ts";
import { canonicalAddress } from "../common/addresses.ts";
import { maxAddressesPerPod } from "../common/endpoints-for-pod.ts";
import { parseNetworkStatus } from "../common/network-status.ts";
import { parseNetworksRequest } from "../common/networks.ts";
import { isPodFinished } from "../common/readiness.ts";
import { selectorMatches } from "../common/selector.ts";

export const warningReasons = {
  malformedNetworkStatus: "MalformedNetworkStatus",
  malformedNetworksRequest: "MalformedNetworksRequest",
  tooManyAddresses: "TooManyAddresses",
} as const;

export type WarningReason = (typeof warningReasons)[keyof typeof warningReasons];

/** What is wrong with one of a pod's Multus annotations. */
export type AnnotationProblem = {
  reason: WarningReason;
  /** The parser's description, naming the annotation. */
  error: string;
  /** The offending annotation value, verbatim: one warning per distinct value. */
  value: string;
};

export type PodWarning = {
  pod: { namespace: string; name: string; uid: string };
  reason: WarningReason;
  /** For the Event's note: what is wrong, what it costs, what fixes it. */
  message: string;
  value: string;
};

/** The Event API refuses notes longer than this (bytes; the text here is ASCII apart from pod data). */
export const maxWarningMessageLength = 1024;

/**
 * What is wrong with the pod's Multus annotations, if anything. A malformed
 * network-status makes the pod contribute nothing; a malformed networks
 * request only loses the namespaces it named, so it is reported separately.
 */
export function annotationProblem(pod: V1Pod): AnnotationProblem | undefined {
  const podAnnotations = pod.metadata?.annotations;
  const status = parseNetworkStatus(podAnnotations);
  const statusValue =
    podAnnotations?.[annotations.networkStatus] ?? podAnnotations?.[annotations.legacyNetworkStatus] ?? "";
  if (!status.ok) {
    return { reason: warningReasons.malformedNetworkStatus, error: status.error, value: statusValue };
  }
  const crowded = mostAddresses(status.attachments);
  if (crowded && crowded.count > maxAddressesPerPod) {
    return {
      reason: warningReasons.tooManyAddresses,
      error: `k8s.v1.cni.cncf.io/network-status lists ${crowded.count} addresses on network ${crowded.name}`,
      value: statusValue,
    };
  }
  const requestValue = podAnnotations?.[annotations.networksRequest];
  const request = parseNetworksRequest(requestValue, pod.metadata?.namespace ?? "");
  if (request.error !== undefined) {
    return { reason: warningReasons.malformedNetworksRequest, error: request.error, value: requestValue ?? "" };
  }
  return undefined;
}

/**
 * The warning for a pod with an annotation problem, or none when no
 * NetService selects the pod: an annotation nobody publishes from is not
 * this program's business, and warning about it would only be noise.
 */
export function podWarning(
  pod: V1Pod,
  problem: AnnotationProblem,
  netServices: readonly NetService[],
): PodWarning | undefined {
  if (isPodFinished(pod)) return undefined;
  const namespace = pod.metadata?.namespace ?? "";
  const selecting = netServices
    .filter((ns) => ns.metadata.namespace === namespace && selectorMatches(ns.spec.selector, pod.metadata?.labels))
    .map((ns) => ns.metadata.name)
    .sort();
  if (selecting.length === 0) return undefined;
  return {
    pod: { namespace, name: pod.metadata?.name ?? "", uid: pod.metadata?.uid ?? "" },
    reason: problem.reason,
    message: truncate(`${problem.error}: ${consequence(problem.reason, selecting)}`, maxWarningMessageLength),
    value: problem.value,
  };
}

/** The network (attachment name) with the most distinct addresses, all of its attachments together. */
function mostAddresses(attachments: readonly { name: string; ips: readonly string[] }[]): { name: string; count: number } | undefined {
  const byName = new Map<string, Set<string>>();
  for (const attachment of attachments) {
    const addresses = byName.get(attachment.name) ?? new Set<string>();
    for (const ip of attachment.ips) {
      const canonical = canonicalAddress(ip);
      if (canonical) addresses.add(canonical.address);
    }
    byName.set(attachment.name, addresses);
  }
  let most: { name: string; count: number } | undefined;
  for (const [name, addresses] of byName) {
    if (!most || addresses.size > most.count) most = { name, count: addresses.size };
  }
  return most;
}

function consequence(reason: WarningReason, selecting: readonly string[]): string {
  const names = listNames(selecting);
  if (reason === warningReasons.tooManyAddresses) {
    return (
      `an endpoint holds at most ${maxAddressesPerPod} addresses, so ${names} ${selecting.length > 1 ? "publish" : "publishes"} only the first ` +
      `${maxAddressesPerPod} of them on that network (in address order, IPv4 first) and leave the rest out`
    );
  }
  if (reason === warningReasons.malformedNetworkStatus) {
    return `the pod is left out of ${names} until the annotation is a JSON list of attachments ({name, interface, ips}) as Multus writes it`;
  }
  return (
    `its attachments still count for ${names}, but a bare netAttachDef matches them only in the pod's own ` +
    `namespace until the annotation is fixed (a JSON list of {name, namespace} or "ns/name@if, ...")`
  );
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).join(", ");
  const more = names.length > 5 ? ` and ${names.length - 5} more` : "";
  return `NetService${names.length > 1 ? "s" : ""} ${shown}${more}`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
