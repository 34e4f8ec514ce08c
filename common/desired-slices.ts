// merged view -> the EndpointSlices that DNS servers read.
import type { V1Endpoint, V1EndpointSlice } from "@kubernetes/client-node";
import { annotations, labels, sliceManagedBy, type IpFamily, type NetService } from "./api.ts";
import { addressFamily, compareAddresses } from "./addresses.ts";
import { comparablePorts, metadataNeedsWrite, ownedMetadata, portsOf } from "./desired.ts";
import { jsonEqual } from "./json-equal.ts";
import { compareText } from "./order.ts";
import type { MergedEndpoint, MergedNetService } from "./merge.ts";

/** The EndpointSlice controller's default; consumers size their caches for it. */
export const maxEndpointsPerSlice = 100;

export type DesiredSlices = { slices: V1EndpointSlice[] };

/**
 * EndpointSlices carrying every address of the merged view: one address
 * family per slice, at most 100 endpoints per slice, named
 * `<name>-ipv4-<n>` / `<name>-ipv6-<n>` so that applying them is idempotent.
 *
 * Each endpoint holds exactly one address. The API calls the addresses of one
 * endpoint fungible and consumers (kube-proxy, CoreDNS) use only the first,
 * so a pod with two addresses of a family on the network is two endpoints with
 * the same targetRef, nodeName and hostname: every address is resolvable and
 * consumers that group by pod still can.
 *
 * Packing is stable: given the slices that exist now, an endpoint stays in the
 * slice it is in, new endpoints fill the free room of existing slices before a
 * new slice is started, so one pod changing rewrites one slice, not every
 * slice after it. Only when deletions have left the slices less than half full
 * on average are they packed afresh, in address order.
 *
 * A NetService without endpoints has no slices: upstream's empty placeholder
 * slice only serves its own bookkeeping, and DNS answers the same without it.
 */
export function desiredEndpointSlices(
  netService: NetService,
  merged: MergedNetService,
  triggerTime?: string,
  existing: readonly V1EndpointSlice[] = [],
): DesiredSlices {
  const slices: V1EndpointSlice[] = [];
  for (const family of ["IPv4", "IPv6"] as const) {
    const items = sliceItems(merged.endpoints, family);
    const previous = previousPlacement(netService, family, existing);
    for (const [index, members] of pack(items, previous)) {
      slices.push(slice(netService, family, index, members, triggerTime));
    }
  }
  return { slices };
}

/** Name of the `index`th slice of a family; deterministic, unlike upstream's generateName. */
export function sliceName(netService: NetService, family: IpFamily, index: number): string {
  return `${netService.metadata.name}-${familyShort[family]}-${index}`;
}

/**
 * Whether applying `desired` would change what we own; a new trigger time
 * alone is no reason to write.
 */
export function sliceNeedsWrite(desired: V1EndpointSlice, existing: V1EndpointSlice | undefined): boolean {
  if (!existing) return true;
  return (
    metadataNeedsWrite(desired.metadata, existing.metadata, []) ||
    desired.addressType !== existing.addressType ||
    !jsonEqual(comparablePorts(desired.ports), comparablePorts(existing.ports)) ||
    !jsonEqual(comparableEndpoints(desired.endpoints), comparableEndpoints(existing.endpoints))
  );
}

const familyShort = { IPv4: "ipv4", IPv6: "ipv6" } as const;

/** One future slice endpoint: one address of one pod. */
type Item = { key: string; address: string; endpoint: MergedEndpoint };

function sliceItems(endpoints: readonly MergedEndpoint[], family: IpFamily): Item[] {
  return endpoints
    .flatMap((endpoint) =>
      endpoint.addresses
        .filter((address) => addressFamily(address) === family)
        .map((address) => ({ key: itemKey(address, endpoint.pod.uid), address, endpoint })),
    )
    .sort(compareItems);
}

// Conditions are not part of the key: a pod turning ready stays in its slice.
function itemKey(address: string, podUid: string | undefined): string {
  return `${address} ${podUid ?? ""}`;
}

function compareItems(a: Item, b: Item): number {
  return compareAddresses(a.address, b.address) || compareText(a.endpoint.pod.uid, b.endpoint.pod.uid);
}

/** Existing slices of a family, by index, with the keys of their endpoints. */
function previousPlacement(
  netService: NetService,
  family: IpFamily,
  existing: readonly V1EndpointSlice[],
): Map<number, string[]> {
  const prefix = `${netService.metadata.name}-${familyShort[family]}-`;
  const placement = new Map<number, string[]>();
  for (const each of existing) {
    const name = each.metadata?.name ?? "";
    if (each.addressType !== family || !name.startsWith(prefix)) continue;
    const suffix = name.slice(prefix.length);
    if (!/^(0|[1-9][0-9]{0,5})$/.test(suffix)) continue;
    placement.set(
      Number(suffix),
      (each.endpoints ?? []).map((endpoint) => itemKey(endpoint.addresses[0] ?? "", endpoint.targetRef?.uid)),
    );
  }
  return placement;
}

/** Slice index -> its endpoints, sorted by index; no empty slices. */
function pack(items: readonly Item[], previous: ReadonlyMap<number, string[]>): [number, Item[]][] {
  if (items.length === 0) return [];
  const byKey = new Map(items.map((item) => [item.key, item]));
  const placed = new Set<string>();
  const slices = new Map<number, Item[]>();

  for (const index of [...previous.keys()].sort((a, b) => a - b)) {
    const kept: Item[] = [];
    for (const key of previous.get(index) ?? []) {
      const item = byKey.get(key);
      if (!item || placed.has(key) || kept.length >= maxEndpointsPerSlice) continue;
      placed.add(key);
      kept.push(item);
    }
    slices.set(index, kept);
  }

  const newcomers = items.filter((item) => !placed.has(item.key));
  let next = 0;
  for (const members of slices.values()) {
    const room = Math.max(0, maxEndpointsPerSlice - members.length);
    members.push(...newcomers.slice(next, next + room));
    next += room;
  }
  for (let index = 0; next < newcomers.length; index += 1) {
    if (slices.has(index)) continue;
    slices.set(index, newcomers.slice(next, next + maxEndpointsPerSlice));
    next += maxEndpointsPerSlice;
  }

  const used = [...slices].filter(([, members]) => members.length > 0);
  const needed = Math.ceil(items.length / maxEndpointsPerSlice);
  if (used.length > 2 * needed) return packAfresh(items);
  return used
    .map(([index, members]): [number, Item[]] => [index, [...members].sort(compareItems)])
    .sort(([a], [b]) => a - b);
}

function packAfresh(items: readonly Item[]): [number, Item[]][] {
  const slices: [number, Item[]][] = [];
  for (let start = 0; start < items.length; start += maxEndpointsPerSlice) {
    slices.push([slices.length, items.slice(start, start + maxEndpointsPerSlice)]);
  }
  return slices;
}

function slice(
  netService: NetService,
  family: IpFamily,
  index: number,
  members: readonly Item[],
  triggerTime: string | undefined,
): V1EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: ownedMetadata(netService, sliceName(netService, family, index), {
      labels: {
        [labels.serviceName]: netService.metadata.name,
        [labels.managedBy]: sliceManagedBy,
        [labels.headless]: "",
      },
      annotations: triggerTime ? { [annotations.triggerTime]: triggerTime } : {},
    }),
    addressType: family,
    endpoints: members.map(({ address, endpoint }): V1Endpoint => ({
      addresses: [address],
      conditions: { ready: endpoint.ready, serving: endpoint.serving, terminating: endpoint.terminating },
      targetRef: { kind: "Pod", ...endpoint.pod },
      nodeName: endpoint.nodeName,
      ...(endpoint.zone ? { zone: endpoint.zone } : {}),
      ...(endpoint.hostname ? { hostname: endpoint.hostname } : {}),
    })),
    ports: portsOf(netService),
  };
}

function comparableEndpoints(endpoints: readonly V1Endpoint[] | undefined): object[] {
  return (endpoints ?? []).map((endpoint) => ({
    addresses: endpoint.addresses,
    conditions: {
      ready: endpoint.conditions?.ready,
      serving: endpoint.conditions?.serving,
      terminating: endpoint.conditions?.terminating,
    },
    targetRef: endpoint.targetRef && {
      kind: endpoint.targetRef.kind,
      namespace: endpoint.targetRef.namespace,
      name: endpoint.targetRef.name,
      uid: endpoint.targetRef.uid,
    },
    nodeName: endpoint.nodeName || undefined,
    zone: endpoint.zone || undefined,
    hostname: endpoint.hostname || undefined,
  }));
}
