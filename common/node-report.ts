// node's pods + NetServices -> the node's report, the only thing an agent writes.
import type { V1Pod } from "@kubernetes/client-node";
import type { NetService, ReportEndpoint, ReportNetService, ReportPod, ReportSpec } from "./api.ts";
import { endpointsFromPodNetworks, podNetworks, type PodNetworks } from "./endpoints-for-pod.ts";
import { jsonEqual } from "./json-equal.ts";
import { compareText } from "./order.ts";
import { podReadiness } from "./readiness.ts";

/**
 * The report of one node: an entry per NetService that has endpoints on this
 * node, and none for the others, so a report's size follows the node's pods
 * rather than the cluster's NetServices, and creating a NetService costs a
 * write only on the nodes where it selects pods. Pods are listed once, and
 * only when they contribute to some NetService; entries refer to them by
 * index.
 *
 * The output is a function of the inputs' content only (pods and NetServices
 * sorted by namespace/name), so equal inputs give byte-equal JSON and the agent
 * can skip writing an unchanged report.
 */
export function buildNodeReport(
  nodeName: string,
  pods: readonly V1Pod[],
  netServices: readonly NetService[],
): ReportSpec {
  const podsByNamespace = groupCandidatesByNamespace(pods);
  const entries = [...netServices]
    .sort(compareNetServices)
    .map((netService) => ({
      netService,
      contributions: contributionsTo(netService, podsByNamespace.get(netService.metadata.namespace)),
    }))
    .filter(({ contributions }) => contributions.length > 0);

  const contributing = new Set(
    entries.flatMap(({ contributions }) => contributions.map(({ candidate }) => candidate)),
  );
  const reportPods = [...contributing].sort(compareCandidates);
  const indexOf = new Map(reportPods.map((candidate, index) => [candidate, index]));

  return {
    nodeName,
    pods: reportPods.map(({ pod }) => reportPod(pod)),
    netServices: entries.map(({ netService, contributions }): ReportNetService => ({
      namespace: netService.metadata.namespace,
      name: netService.metadata.name,
      uid: netService.metadata.uid,
      generation: netService.metadata.generation,
      endpoints: contributions
        .map(({ candidate, addresses }): ReportEndpoint => ({
          pod: indexOf.get(candidate) ?? 0,
          addresses,
        }))
        .sort((a, b) => a.pod - b.pod),
    })),
  };
}

/** Whether two reports publish the same thing; triggerTime only says when. */
export function reportsEqual(a: ReportSpec, b: ReportSpec): boolean {
  return jsonEqual({ ...a, triggerTime: undefined }, { ...b, triggerTime: undefined });
}

/**
 * Budget for one report's spec (JSON, UTF-8): etcd refuses requests above
 * 1.5 MiB, and the object also carries metadata and managedFields, so keep a
 * third spare.
 *
 * How the spec stays bounded: a pod is listed once however many NetServices
 * select it (at most ~450 bytes with maximal names, ~150 typically, and a node
 * runs at most its maxPods, 110 by default); each NetService with endpoints
 * on the node costs a fixed ~120 bytes (up to ~400 with maximal names) plus
 * ~12 bytes per contributing pod and ~16 (IPv4) to ~42 (IPv6) per address.
 * The only term that grows without a per-node limit is the number of
 * NetServices selecting the node's pods, so a node with thousands of
 * NetServices selecting all its pods exceeds one object; the agent then splits
 * the entries over several reports by whole NetService entries, each carrying
 * the pods its entries refer to, and checks each part against this budget
 * (report-parts.ts).
 */
export const maxReportBytes = 1_000_000;

type Candidate = { pod: V1Pod; networks: PodNetworks };
type Contribution = { candidate: Candidate; addresses: string[] };

function groupCandidatesByNamespace(pods: readonly V1Pod[]): Map<string, Candidate[]> {
  const byNamespace = new Map<string, Candidate[]>();
  for (const pod of pods) {
    const networks = podNetworks(pod);
    if (networks.finished || networks.attachments.length === 0) continue;
    const candidate = { pod, networks };
    const group = byNamespace.get(networks.namespace);
    if (group) group.push(candidate);
    else byNamespace.set(networks.namespace, [candidate]);
  }
  return byNamespace;
}

function contributionsTo(netService: NetService, candidates: Candidate[] | undefined): Contribution[] {
  const contributions: Contribution[] = [];
  for (const candidate of candidates ?? []) {
    const { addresses } = endpointsFromPodNetworks(candidate.networks, netService);
    if (addresses.length > 0) contributions.push({ candidate, addresses });
  }
  return contributions;
}

function reportPod(pod: V1Pod): ReportPod {
  const hostname = pod.spec?.hostname;
  const subdomain = pod.spec?.subdomain;
  return {
    namespace: pod.metadata?.namespace ?? "",
    name: pod.metadata?.name ?? "",
    uid: pod.metadata?.uid ?? "",
    ...(hostname ? { hostname } : {}),
    ...(hostname && subdomain ? { subdomain } : {}),
    ...podReadiness(pod),
  };
}

// The uid breaks the tie between a deleted pod and its same-named successor,
// which a cache can briefly hold together.
function compareCandidates(a: Candidate, b: Candidate): number {
  const { namespace: nsA = "", name: nameA = "", uid: uidA = "" } = a.pod.metadata ?? {};
  const { namespace: nsB = "", name: nameB = "", uid: uidB = "" } = b.pod.metadata ?? {};
  return compareText(nsA, nsB) || compareText(nameA, nameB) || compareText(uidA, uidB);
}

function compareNetServices(a: NetService, b: NetService): number {
  const { namespace: nsA, name: nameA, uid: uidA } = a.metadata;
  const { namespace: nsB, name: nameB, uid: uidB } = b.metadata;
  return compareText(nsA, nsB) || compareText(nameA, nameB) || compareText(uidA, uidB);
}
