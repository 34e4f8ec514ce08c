// What every NetService should publish, computed from the pods themselves:
// their Multus network-status, their readiness and the NetServices'
// selectors. Written from DESIGN.md §5 and docs/matching.md without the
// project's parser, matcher or address code, so a bug there cannot hide in
// the checker. The hostile-input property tests hold the two against each
// other on generated pods.
import { BlockList, isIPv4, isIPv6 } from "node:net";

export type Family = "IPv4" | "IPv6";

export type PodJson = {
  metadata: {
    namespace: string;
    name: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    resourceVersion?: string;
  };
  spec?: { nodeName?: string; hostname?: string; subdomain?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
};

export type NetServiceJson = {
  metadata: { namespace: string; name: string; uid: string; generation?: number; deletionTimestamp?: string; resourceVersion?: string };
  spec: {
    netAttachDef: string;
    selector: Record<string, string>;
    ports?: { name?: string; port: number; protocol?: string; appProtocol?: string }[];
    ipFamilies?: Family[];
    publishNotReadyAddresses?: boolean;
    templateServiceName?: string;
  };
};

/** One address a NetService must publish, with the conditions the EndpointSlice controller would give it. */
export type ExpectedAddress = {
  ip: string;
  family: Family;
  pod: string;
  podUid: string;
  node: string;
  /** Endpoints: in `addresses` when true, `notReadyAddresses` otherwise. */
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** False while the pod's node does not serve (DESIGN.md §2 Liveness): the NetService is then not NodesHealthy. */
  nodeServes: boolean;
  /** As upstream: the pod's spec.hostname, only when its spec.subdomain names this NetService. */
  hostname?: string;
};

/**
 * Everything one NetService must publish, by addressKey(ip, pod uid): an
 * address is normally one pod's, but a hung node can keep publishing a dead
 * pod's address after the network's IPAM gave it to a new pod elsewhere.
 */
export type ExpectedNetService = {
  key: string;
  netService: NetServiceJson;
  addresses: Map<string, ExpectedAddress>;
  /** Pods with at least one address, and how many of them are ready (the status counts). */
  readyPods: number;
  notReadyPods: number;
};

const networkStatusKey = "k8s.v1.cni.cncf.io/network-status";
const legacyNetworkStatusKey = "k8s.v1.cni.cncf.io/networks-status";
const networksRequestKey = "k8s.v1.cni.cncf.io/networks";

/**
 * The truth for every NetService given, from the pods given. Pods on nodes
 * that are not in `liveNodes` contribute nothing (their node is gone, and the
 * aggregator ignores its report); pods on `unservedNodes` (NotReady,
 * unreachable, agent silent: DESIGN.md §2 Liveness) are not serving.
 */
export function expectedEndpoints(
  netServices: readonly NetServiceJson[],
  pods: readonly PodJson[],
  liveNodes: ReadonlySet<string>,
  unservedNodes: ReadonlySet<string> = new Set(),
): Map<string, ExpectedNetService> {
  const result = new Map<string, ExpectedNetService>();
  const attachments = new Map<PodJson, { name: string; ips: string[] }[] | undefined>();
  for (const netService of netServices) {
    if (netService.metadata.deletionTimestamp) continue;
    const key = `${netService.metadata.namespace}/${netService.metadata.name}`;
    const expected: ExpectedNetService = { key, netService, addresses: new Map(), readyPods: 0, notReadyPods: 0 };
    for (const pod of pods) {
      const node = pod.spec?.nodeName;
      if (pod.metadata.namespace !== netService.metadata.namespace || !node || !liveNodes.has(node)) continue;
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
      if (!selects(netService.spec.selector, pod.metadata.labels ?? {})) continue;
      if (!attachments.has(pod)) attachments.set(pod, networkStatusOf(pod));
      const ips = podAddresses(pod, attachments.get(pod), netService);
      if (ips.length === 0) continue;
      const nodeServes = !unservedNodes.has(node);
      const serving = nodeServes && (pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false);
      const terminating = pod.metadata.deletionTimestamp !== undefined;
      const ready = (netService.spec.publishNotReadyAddresses ?? false) || (serving && !terminating);
      if (ready) expected.readyPods++;
      else expected.notReadyPods++;
      const hostname = pod.spec?.hostname && pod.spec.subdomain === netService.metadata.name ? { hostname: pod.spec.hostname } : {};
      for (const { ip, family } of ips) {
        expected.addresses.set(addressKey(ip, pod.metadata.uid), { ip, family, pod: pod.metadata.name, podUid: pod.metadata.uid, node, ready, serving, terminating, nodeServes, ...hostname });
      }
    }
    result.set(key, expected);
  }
  return result;
}

/** What a NetService's status must say, from what it must publish (docs/api.md, status and Conditions). */
export type ExpectedStatus = {
  readyEndpoints: number;
  notReadyEndpoints: number;
  nodesReporting: number;
  ready: { status: "True" | "False"; reason: string };
  nodesHealthy: { status: "True" | "False"; reason: string };
};

/**
 * An endpoint is a pod with at least one address (counted once however many
 * it has); the nodes reporting are those with some endpoint; Ready is True,
 * EndpointsPublished, when there is an endpoint and NoMatchingPods when there
 * is none (no other problem arises in the scenarios); NodesHealthy is False
 * while some node with endpoints does not serve.
 */
export function expectedStatus(want: Pick<ExpectedNetService, "addresses">): ExpectedStatus {
  const pods = new Map<string, boolean>();
  const nodes = new Set<string>();
  let unhealthy = false;
  for (const address of want.addresses.values()) {
    pods.set(address.podUid, address.ready);
    nodes.add(address.node);
    if (!address.nodeServes) unhealthy = true;
  }
  const readyEndpoints = [...pods.values()].filter(Boolean).length;
  return {
    readyEndpoints,
    notReadyEndpoints: pods.size - readyEndpoints,
    nodesReporting: nodes.size,
    ready: pods.size > 0 ? { status: "True", reason: "EndpointsPublished" } : { status: "False", reason: "NoMatchingPods" },
    nodesHealthy: unhealthy ? { status: "False", reason: "NodesUnhealthy" } : { status: "True", reason: "AllNodesHealthy" },
  };
}

/** A port as both Services, the Endpoints and the EndpointSlices must carry it: protocol defaults to TCP. */
export type ExpectedPort = { name: string; port: number; protocol: string; appProtocol?: string };

/** What both Services of a NetService must say (docs/api.md, What a NetService makes; DESIGN.md §5). */
export type ExpectedServices = {
  ports: ExpectedPort[];
  templateName: string;
  publishNotReadyAddresses: boolean;
  /**
   * The named Service's families: those of spec.ipFamilies (SingleStack for
   * one, RequireDualStack for two); omitted, every family, which the API
   * server's default for a selectorless headless Service already is
   * (RequireDualStack, IPv4 and IPv6).
   */
  ipFamilyPolicy: "SingleStack" | "RequireDualStack";
  ipFamilies: Family[];
};

export function expectedServices(netService: NetServiceJson): ExpectedServices {
  const families = [...new Set(netService.spec.ipFamilies?.length ? netService.spec.ipFamilies : (["IPv4", "IPv6"] as const))].sort();
  return {
    ports: (netService.spec.ports ?? []).map((p) => ({
      name: p.name ?? "",
      port: p.port,
      protocol: p.protocol ?? "TCP",
      ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
    })),
    templateName: netService.spec.templateServiceName ?? `${netService.metadata.name}-template`,
    publishNotReadyAddresses: netService.spec.publishNotReadyAddresses ?? false,
    ipFamilyPolicy: families.length > 1 ? "RequireDualStack" : "SingleStack",
    ipFamilies: families,
  };
}

/** A Node whose endpoints are published not serving: Ready is False or Unknown, or it is tainted unreachable. */
export function nodeUnserved(node: { status?: { conditions?: { type: string; status: string }[] }; spec?: { taints?: { key: string }[] } }): boolean {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status;
  return ready === "False" || ready === "Unknown" || (node.spec?.taints ?? []).some((taint) => taint.key === "node.kubernetes.io/unreachable");
}

export function addressKey(ip: string, podUid: string | undefined): string {
  return `${ip} ${podUid ?? "?"}`;
}

/** A Service selector: every pair present. An empty selector selects nothing, as a Service's does. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const pairs = Object.entries(selector);
  return pairs.length > 0 && pairs.every(([key, value]) => labels[key] === value);
}

/**
 * The attachments Multus recorded, or undefined when the annotation is not a
 * JSON list of objects each with a string `name` (and, if present, string
 * `interface`, string-list `ips`, boolean `default`; null counts as absent).
 * The singular annotation wins whenever it is present.
 */
export function networkStatusOf(pod: PodJson): { name: string; ips: string[] }[] | undefined {
  const annotations = pod.metadata.annotations ?? {};
  const value = networkStatusKey in annotations ? annotations[networkStatusKey] : annotations[legacyNetworkStatusKey];
  if (value === undefined || value.trim() === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const entries: { name: string; ips: string[] }[] = [];
  for (const entry of parsed as unknown[]) {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return undefined;
    const { name, ips, interface: ifname, default: isDefault } = entry as Record<string, unknown>;
    if (typeof name !== "string") return undefined;
    if (ifname !== undefined && ifname !== null && typeof ifname !== "string") return undefined;
    if (isDefault !== undefined && isDefault !== null && typeof isDefault !== "boolean") return undefined;
    if (ips !== undefined && ips !== null && !(Array.isArray(ips) && ips.every((ip) => typeof ip === "string"))) return undefined;
    entries.push({ name, ips: (ips as string[] | null | undefined) ?? [] });
  }
  return entries;
}

function podAddresses(
  pod: PodJson,
  entries: { name: string; ips: string[] }[] | undefined,
  netService: NetServiceJson,
): { ip: string; family: Family }[] {
  if (!entries) return [];
  const wanted = netService.spec.netAttachDef;
  const names = new Set<string>([wanted]);
  if (!wanted.includes("/")) {
    names.add(`${pod.metadata.namespace}/${wanted}`);
    for (const namespace of requestedNamespaces(pod, wanted)) names.add(`${namespace}/${wanted}`);
  }
  const families = netService.spec.ipFamilies?.length ? new Set(netService.spec.ipFamilies) : undefined;
  const found = new Map<string, Family>();
  for (const entry of entries) {
    if (!names.has(entry.name)) continue;
    for (const text of entry.ips) {
      const address = publishable(text);
      if (address && (!families || families.has(address.family))) found.set(address.ip, address.family);
    }
  }
  // An endpoint holds at most 100 addresses: the first 100 in address order (IPv4 first, then by value).
  return [...found]
    .map(([ip, family]) => ({ ip, family, value: addressValue(ip, family) }))
    .sort((a, b) => (a.family === b.family ? (a.value < b.value ? -1 : a.value > b.value ? 1 : 0) : a.family === "IPv4" ? -1 : 1))
    .slice(0, 100)
    .map(({ ip, family }) => ({ ip, family }));
}

/** The numeric value of a canonical address (dotted decimal, or the hex groups the URL serialiser writes). */
function addressValue(ip: string, family: Family): bigint {
  if (family === "IPv4") return ip.split(".").reduce((sum, octet) => sum * 256n + BigInt(octet), 0n);
  const [head = "", tail] = ip.split("::");
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groupsOf(head);
  const right = tail === undefined ? [] : groupsOf(tail);
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((sum, group) => sum * 65536n + BigInt(parseInt(group, 16)), 0n);
}

/** Namespaces in which the pod asked Multus for a network called `name` (k8s.v1.cni.cncf.io/networks, either form). */
function requestedNamespaces(pod: PodJson, name: string): string[] {
  const value = pod.metadata.annotations?.[networksRequestKey]?.trim() ?? "";
  if (value === "") return [];
  const own = pod.metadata.namespace;
  if (/[[{"]/.test(value)) {
    try {
      const parsed: unknown = JSON.parse(value);
      const list = Array.isArray(parsed) ? parsed : [parsed];
      return list
        .filter((item): item is { name: string; namespace?: unknown } => typeof item === "object" && item !== null && (item as { name?: unknown }).name === name)
        .map((item) => (typeof item.namespace === "string" && item.namespace !== "" ? item.namespace : own));
    } catch {
      return [];
    }
  }
  return value
    .split(",")
    .map((part) => part.trim().split("@")[0] ?? "")
    .map((part) => (part.includes("/") ? part.split("/") : [own, part]))
    .filter(([, requested]) => requested === name)
    .map(([namespace]) => namespace ?? own);
}

// Ranges the API server refuses in Endpoints and EndpointSlices, and that no
// other pod could reach: unspecified, loopback, link-local, multicast.
const refused = new BlockList();
refused.addSubnet("0.0.0.0", 32, "ipv4");
refused.addSubnet("127.0.0.0", 8, "ipv4");
refused.addSubnet("169.254.0.0", 16, "ipv4");
refused.addSubnet("224.0.0.0", 4, "ipv4");
refused.addAddress("::", "ipv6");
refused.addAddress("::1", "ipv6");
refused.addSubnet("fe80::", 10, "ipv6");
refused.addSubnet("ff00::", 8, "ipv6");

/**
 * The canonical text of an address written bare or as CIDR, if it may be
 * published: dotted decimal without leading zeros for IPv4, RFC 5952 (the
 * WHATWG URL serialiser) for IPv6, an IPv4-mapped IPv6 address as IPv4.
 */
export function publishable(text: string): { ip: string; family: Family } | undefined {
  const trimmed = text.trim();
  const [bare = "", prefix, extra] = trimmed.split("/");
  if (extra !== undefined || bare.includes("%")) return undefined;
  if (isIPv4(bare)) {
    // node:net refuses octets with leading zeros, whose meaning (octal or decimal) differs between parsers.
    if (prefix !== undefined && !prefixOk(prefix, 32)) return undefined;
    return refused.check(bare, "ipv4") ? undefined : { ip: bare, family: "IPv4" };
  }
  if (isIPv6(bare)) {
    if (prefix !== undefined && !prefixOk(prefix, 128)) return undefined;
    const canonical = new URL(`http://[${bare}]`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
    if (mapped) {
      const high = parseInt(mapped[1] ?? "0", 16);
      const low = parseInt(mapped[2] ?? "0", 16);
      const ip = [high >> 8, high & 255, low >> 8, low & 255].join(".");
      return refused.check(ip, "ipv4") ? undefined : { ip, family: "IPv4" };
    }
    return refused.check(canonical, "ipv6") ? undefined : { ip: canonical, family: "IPv6" };
  }
  return undefined;
}

function prefixOk(prefix: string, max: number): boolean {
  return /^(0|[1-9]\d{0,2})$/.test(prefix) && Number(prefix) <= max;
}
