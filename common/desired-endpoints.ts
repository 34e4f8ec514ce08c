// merged view -> the Endpoints object, for the consumers that still read the
// deprecated Endpoints API.
import type { V1EndpointAddress, V1Endpoints, V1EndpointSubset } from "@kubernetes/client-node";
import { annotations, labels, type NetService } from "./api.ts";
import { compareAddresses } from "./addresses.ts";
import { comparablePorts, metadataNeedsWrite, ownedMetadata, portsOf } from "./desired.ts";
import { jsonEqual } from "./json-equal.ts";
import { compareText } from "./order.ts";
import type { MergedEndpoint, MergedNetService } from "./merge.ts";

/** The Endpoints controller's limit; consumers of this API assume it. */
export const maxEndpointsAddresses = 1000;

/**
 * Endpoints `<name>`: one subset with the ready addresses in `addresses` and
 * the others in `notReadyAddresses`, every address of every pod (a pod with
 * several addresses appears once per address, each with the same targetRef).
 *
 * Beyond 1000 addresses, as upstream: ready addresses are kept first and the
 * object says `endpoints.kubernetes.io/over-capacity: truncated`; the
 * EndpointSlices carry everything. `endpointslice.kubernetes.io/skip-mirror`
 * stops the mirroring controller from publishing the addresses a second time.
 *
 * Terminating pods are left out, as upstream's Endpoints controller does,
 * unless publishNotReadyAddresses (then they are ready); the EndpointSlices
 * carry them, with terminating=true.
 */
export function desiredEndpoints(
  netService: NetService,
  merged: MergedNetService,
  triggerTime?: string,
): V1Endpoints {
  const listed = merged.endpoints.filter((endpoint) => !endpoint.terminating || netService.spec.publishNotReadyAddresses);
  const ready = endpointAddresses(listed.filter((endpoint) => endpoint.ready));
  const notReady = endpointAddresses(listed.filter((endpoint) => !endpoint.ready));
  const keptReady = ready.slice(0, maxEndpointsAddresses);
  const keptNotReady = notReady.slice(0, maxEndpointsAddresses - keptReady.length);
  const truncated = keptReady.length + keptNotReady.length < ready.length + notReady.length;
  const ports = portsOf(netService);

  const subset: V1EndpointSubset = {
    ...(keptReady.length > 0 ? { addresses: keptReady } : {}),
    ...(keptNotReady.length > 0 ? { notReadyAddresses: keptNotReady } : {}),
    ...(ports.length > 0 ? { ports } : {}),
  };
  return {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: ownedMetadata(netService, netService.metadata.name, {
      labels: {
        [labels.serviceName]: netService.metadata.name,
        [labels.skipMirror]: "true",
        [labels.headless]: "",
      },
      annotations: {
        ...(triggerTime ? { [annotations.triggerTime]: triggerTime } : {}),
        ...(truncated ? { [annotations.overCapacity]: "truncated" } : {}),
      },
    }),
    // A subset must list at least one address, so no endpoints is no subset.
    subsets: keptReady.length + keptNotReady.length > 0 ? [subset] : [],
  };
}

/**
 * Whether applying `desired` would change what we own; a new trigger time
 * alone is no reason to write.
 */
export function endpointsNeedsWrite(desired: V1Endpoints, existing: V1Endpoints | undefined): boolean {
  if (!existing) return true;
  return (
    metadataNeedsWrite(desired.metadata, existing.metadata, [annotations.overCapacity]) ||
    !jsonEqual(comparableSubsets(desired.subsets), comparableSubsets(existing.subsets))
  );
}

// Sorted by address so the object does not change when pods are merely
// listed in another order, and truncation drops the same addresses each time.
function endpointAddresses(endpoints: readonly MergedEndpoint[]): V1EndpointAddress[] {
  return endpoints
    .flatMap((endpoint) => endpoint.addresses.map((ip) => ({ ip, endpoint })))
    .sort((a, b) => compareAddresses(a.ip, b.ip) || compareText(a.endpoint.pod.uid, b.endpoint.pod.uid))
    .map(({ ip, endpoint }) => ({
      ip,
      ...(endpoint.hostname ? { hostname: endpoint.hostname } : {}),
      nodeName: endpoint.nodeName,
      targetRef: { kind: "Pod", ...endpoint.pod },
    }));
}

function comparableSubsets(subsets: readonly V1EndpointSubset[] | undefined): object[] {
  return (subsets ?? []).map((subset) => ({
    addresses: comparableAddresses(subset.addresses),
    notReadyAddresses: comparableAddresses(subset.notReadyAddresses),
    ports: comparablePorts(subset.ports),
  }));
}

function comparableAddresses(addresses: readonly V1EndpointAddress[] | undefined): object[] {
  return (addresses ?? []).map((address) => ({
    ip: address.ip,
    hostname: address.hostname || undefined,
    nodeName: address.nodeName || undefined,
    targetRef: address.targetRef && {
      kind: address.targetRef.kind,
      namespace: address.targetRef.namespace,
      name: address.targetRef.name,
      uid: address.targetRef.uid,
    },
  }));
}
