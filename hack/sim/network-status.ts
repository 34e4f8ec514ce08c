// What Multus reads from a pod and writes back, as pure functions: the
// `k8s.v1.cni.cncf.io/networks` request and the network-status annotation.
// Deliberately independent of common/: the fake imitates Multus, and the code
// under test must not be checked against itself.
import { createHash } from "node:crypto";
import { z } from "zod";
import { dnsLabelPattern } from "../../common/kube/names.ts";
import { canonicalIp } from "./ip.ts";
import type { AllocatedAddress } from "./ipam.ts";

export const networksAnnotation = "k8s.v1.cni.cncf.io/networks";
export const networkStatusAnnotation = "k8s.v1.cni.cncf.io/network-status";
/** Multus before v3.6 wrote only this name, with bare network names. */
export const legacyNetworkStatusAnnotation = "k8s.v1.cni.cncf.io/networks-status";

/** One element of a pod's networks request, namespace resolved. */
export type NetworkSelection = {
  namespace: string;
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
};

/** One entry of network-status, with Multus' field order. */
export type NetworkStatusEntry = {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  default?: boolean;
  dns: Record<string, never>;
};

/** The minimum the functions here read from a pod; a V1Pod fits. */
export type PodLike = {
  metadata?: { namespace?: string; name?: string; uid?: string; annotations?: Record<string, string> };
  status?: { podIP?: string; podIPs?: { ip: string }[] };
};

/** What network-status needs to know of a NetworkAttachmentDefinition. */
export type NadSummary = {
  /** The `name` inside its CNI config, which Multus before v3.6 published instead of the NAD's name. */
  cniName?: string;
};

export type NetworkStatusOptions = {
  /** Write `networks-status` with bare names, as Multus before v3.6 did. */
  legacy?: boolean;
  /** Name of the cluster network's entry, the default delegate's CNI config name (kindnet, cbr0, ...). */
  defaultNetworkName?: string;
  /** The pod's cluster-network addresses when they are not in its status yet (a CNI ADD runs before the kubelet reports them). */
  podIPs?: readonly string[];
};

export class NetworksRequestError extends Error {
  override name = "NetworksRequestError";
}

export const defaultNetworkName = "kindnet";

/**
 * Parses `k8s.v1.cni.cncf.io/networks` as Multus does: a JSON list of
 * selection elements when the value contains `[`, `{` or `"`, otherwise the
 * comma form `ns/name@ifname, name, ...`. A network without namespace is in
 * the pod's namespace. Throws NetworksRequestError where Multus would fail the
 * pod's sandbox.
 */
export function parseNetworksRequest(value: string | undefined, podNamespace: string): NetworkSelection[] {
  const text = value?.trim() ?? "";
  if (text === "") return [];
  const selections = /[[{"]/.test(text) ? parseJsonForm(text) : text.split(",").map((item) => parseCommaItem(item.trim()));
  return selections.map((selection) => validated({ ...selection, namespace: selection.namespace || podNamespace }));
}

/** Identifies one attachment of a pod in the allocations map: a pod may attach to the same network twice. */
export function attachmentSlot(index: number, selection: NetworkSelection): string {
  return `${index}:${selection.namespace}/${selection.name}`;
}

export function nadKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * The network-status Multus v4 would write for the pod: first the cluster
 * network (`eth0`, the pod IPs, `default: true`), then one entry per requested
 * attachment that has both a NAD in `nadsByKey` and an allocation for its slot
 * in `allocations` (a missing NAD or failed allocation leaves the attachment
 * out), named `<ns>/<name>` (bare name in legacy mode), on the requested
 * interface or `net<position>`, with a requested or deterministic
 * locally administered MAC.
 */
export function networkStatusFor(
  pod: PodLike,
  nadsByKey: ReadonlyMap<string, NadSummary>,
  allocations: ReadonlyMap<string, readonly AllocatedAddress[]>,
  options: NetworkStatusOptions = {},
): { annotation: string; value: string; entries: NetworkStatusEntry[] } {
  const namespace = pod.metadata?.namespace ?? "default";
  const seed = pod.metadata?.uid ?? `${namespace}/${pod.metadata?.name ?? ""}`;
  const podIPs = options.podIPs ?? pod.status?.podIPs?.map((entry) => entry.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
  const entries: NetworkStatusEntry[] = [
    entry({ name: options.defaultNetworkName ?? defaultNetworkName, interface: "eth0", ips: podIPs, mac: macAddress(`${seed}/eth0`), default: true }),
  ];
  const selections = parseNetworksRequest(pod.metadata?.annotations?.[networksAnnotation], namespace);
  for (const [index, selection] of selections.entries()) {
    const nad = nadsByKey.get(nadKey(selection.namespace, selection.name));
    const addresses = allocations.get(attachmentSlot(index, selection));
    if (!nad || !addresses) continue;
    // Multus numbers delegates from 1 (0 is the cluster network), whether or not they asked for a name.
    const ifname = selection.interface ?? `net${index + 1}`;
    entries.push(entry({
      name: options.legacy ? nad.cniName ?? selection.name : nadKey(selection.namespace, selection.name),
      interface: ifname,
      ips: addresses.map((address) => address.address),
      mac: selection.mac ?? macAddress(`${seed}/${ifname}`),
    }));
  }
  return {
    annotation: options.legacy ? legacyNetworkStatusAnnotation : networkStatusAnnotation,
    value: formatNetworkStatus(entries),
    entries,
  };
}

/** Multus' text: each entry as Go's json.MarshalIndent(entry, "", "    "), joined by commas in brackets. */
export function formatNetworkStatus(entries: readonly NetworkStatusEntry[]): string {
  return `[${entries.map((e) => JSON.stringify(e, null, 4)).join(",")}]`;
}

/** A stable unicast, locally administered MAC for the seed (pod uid and interface). */
export function macAddress(seed: string): string {
  const bytes = createHash("sha256").update(seed).digest().subarray(0, 6);
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

// Go's omitempty drops empty interface, ips, mac and a false default; dns is a struct and always present.
function entry(fields: { name: string; interface?: string; ips?: readonly string[]; mac?: string; default?: boolean }): NetworkStatusEntry {
  const head: Omit<NetworkStatusEntry, "dns"> = { name: fields.name };
  if (fields.interface) head.interface = fields.interface;
  if (fields.ips && fields.ips.length > 0) head.ips = [...fields.ips];
  if (fields.mac) head.mac = fields.mac;
  if (fields.default) head.default = true;
  return { ...head, dns: {} };
}

const selectionSchema = z.object({
  name: z.string(),
  namespace: z.string().optional(),
  interface: z.string().optional(),
  ips: z.array(z.string()).optional(),
  mac: z.string().optional(),
});

function parseJsonForm(text: string): NetworkSelection[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new NetworksRequestError(`failed to parse pod Network Attachment Selection Annotation JSON format: ${(error as Error).message}`);
  }
  const parsed = z.array(selectionSchema).safeParse(json);
  if (!parsed.success) throw new NetworksRequestError(`network selection elements are malformed: ${z.prettifyError(parsed.error)}`);
  return parsed.data.map((element) => {
    const selection: NetworkSelection = { namespace: element.namespace ?? "", name: element.name };
    if (element.interface) selection.interface = element.interface;
    if (element.ips) selection.ips = element.ips;
    if (element.mac) selection.mac = element.mac;
    return selection;
  });
}

function parseCommaItem(item: string): NetworkSelection {
  const slash = item.split("/");
  if (slash.length > 2) throw new NetworksRequestError(`invalid network object ${JSON.stringify(item)} (failed at '/')`);
  const namespace = slash.length === 2 ? (slash[0] ?? "").trim() : "";
  const at = (slash[slash.length - 1] ?? "").split("@");
  if (at.length > 2) throw new NetworksRequestError(`invalid network object ${JSON.stringify(item)} (failed at '@')`);
  const name = (at[0] ?? "").trim();
  for (const part of [namespace, name]) {
    if (part !== "" && !dnsLabelPattern.test(part)) throw new NetworksRequestError(`${JSON.stringify(part)} in ${JSON.stringify(item)} is not a DNS-1123 label`);
  }
  const selection: NetworkSelection = { namespace, name };
  const ifname = at.length === 2 ? (at[1] ?? "").trim() : "";
  if (ifname) selection.interface = ifname;
  return selection;
}

function validated(selection: NetworkSelection): NetworkSelection {
  if (selection.name === "") throw new NetworksRequestError("a network selection element has no name");
  if (selection.interface !== undefined && (selection.interface.length > 15 || /[\s/]/.test(selection.interface))) {
    throw new NetworksRequestError(`interface name ${JSON.stringify(selection.interface)} must be at most 15 characters without '/' or spaces`);
  }
  if (selection.mac !== undefined) {
    if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(selection.mac)) throw new NetworksRequestError(`mac ${JSON.stringify(selection.mac)} is not a MAC address`);
    selection.mac = selection.mac.toLowerCase().replaceAll("-", ":");
  }
  for (const ip of selection.ips ?? []) {
    const [address, prefix, ...rest] = ip.split("/");
    const badPrefix = prefix !== undefined && !/^\d{1,3}$/.test(prefix);
    if (rest.length > 0 || badPrefix || canonicalIp(address ?? "") === undefined) throw new NetworksRequestError(`requested IP ${JSON.stringify(ip)} is not an address or CIDR`);
  }
  return selection;
}
