// Reads the IPAM section of a NetworkAttachmentDefinition's `spec.config` (a
// CNI config or a conflist) into address ranges the fake Multus allocates
// from. It understands the IPAM plugins secondary networks use in practice:
// host-local, whereabouts and static; anything else (dhcp, no ipam at all, as
// with many SR-IOV networks) gives an attachment without addresses.
import { z } from "zod";
import { bitsOf, contains, formatCidr, lastAddress, parseCidr, parseIp, type Cidr, type Family } from "./ip.ts";

/** Addresses `start`..`end` of `subnet` (network and IPv4 broadcast already cut off), minus gateway and exclusions. */
export type AddressRange = {
  subnet: Cidr;
  start: bigint;
  end: bigint;
  gateway?: bigint;
  exclude: Cidr[];
};

/** One address per range set; a range set is tried range by range. Dual-stack configs have one set per family. */
export type RangeSet = AddressRange[];

export type StaticAddress = { family: Family; address: bigint; prefix: number };

export type IpamConfig =
  | { kind: "ranges"; plugin: string; rangeSets: RangeSet[] }
  | { kind: "static"; addresses: StaticAddress[] }
  | { kind: "none"; plugin?: string };

export type NetworkConfig = {
  /** The CNI config's own `name`, which Multus before v3.6 put in network-status. */
  name?: string;
  ipam: IpamConfig;
};

export class IpamConfigError extends Error {
  override name = "IpamConfigError";
}

/** Parses a NAD's `spec.config`; throws IpamConfigError when it is not valid JSON or its IPAM section is unusable. */
export function parseNetworkConfig(config: string): NetworkConfig {
  let json: unknown;
  try {
    json = JSON.parse(config);
  } catch (error) {
    throw new IpamConfigError(`spec.config is not JSON: ${(error as Error).message}`);
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) throw new IpamConfigError(`spec.config is not a CNI config: ${z.prettifyError(parsed.error)}`);
  // In a conflist the interface's addresses come from the plugin that has IPAM, normally the first.
  const plugins = parsed.data.plugins ?? [parsed.data];
  const ipam = plugins.find((plugin) => plugin.ipam?.type !== undefined)?.ipam ?? plugins[0]?.ipam;
  const name = parsed.data.name;
  return { ...(name === undefined ? {} : { name }), ipam: ipam ? parseIpam(ipam) : { kind: "none" } };
}

const hostLocalRangeSchema = z.object({
  subnet: z.string(),
  rangeStart: z.string().optional(),
  rangeEnd: z.string().optional(),
  gateway: z.string().optional(),
});

const whereaboutsRangeSchema = z.object({
  range: z.string(),
  range_start: z.string().optional(),
  range_end: z.string().optional(),
  exclude: z.array(z.string()).optional(),
});

const ipamSchema = z.object({
  type: z.string().optional(),
  // host-local
  ranges: z.array(z.array(hostLocalRangeSchema)).optional(),
  subnet: z.string().optional(),
  rangeStart: z.string().optional(),
  rangeEnd: z.string().optional(),
  gateway: z.string().optional(),
  // whereabouts
  range: z.string().optional(),
  range_start: z.string().optional(),
  range_end: z.string().optional(),
  exclude: z.array(z.string()).optional(),
  ipRanges: z.array(whereaboutsRangeSchema).optional(),
  // static
  addresses: z.array(z.object({ address: z.string(), gateway: z.string().optional() })).optional(),
});
type IpamSection = z.infer<typeof ipamSchema>;

const pluginSchema = z.object({ name: z.string().optional(), type: z.string().optional(), ipam: ipamSchema.optional() });
const configSchema = pluginSchema.extend({ plugins: z.array(pluginSchema).min(1).optional() });

function parseIpam(ipam: IpamSection): IpamConfig {
  const style = styleOf(ipam);
  const plugin = ipam.type ?? style;
  switch (style) {
    case "host-local":
      return { kind: "ranges", plugin, rangeSets: hostLocalRangeSets(ipam) };
    case "whereabouts":
      return { kind: "ranges", plugin, rangeSets: whereaboutsRangeSets(ipam) };
    case "static":
      return { kind: "static", addresses: (ipam.addresses ?? []).map((entry) => staticAddress(entry.address)) };
    case "none":
      return { kind: "none", ...(ipam.type === undefined ? {} : { plugin: ipam.type }) };
  }
}

function styleOf(ipam: IpamSection): "host-local" | "whereabouts" | "static" | "none" {
  if (ipam.type === "host-local" || ipam.type === "whereabouts" || ipam.type === "static") return ipam.type;
  if (ipam.type !== undefined && ipam.type !== "") return "none";
  if (ipam.ranges || ipam.subnet) return "host-local";
  if (ipam.range || ipam.ipRanges) return "whereabouts";
  if (ipam.addresses) return "static";
  return "none";
}

function hostLocalRangeSets(ipam: IpamSection): RangeSet[] {
  const sets = ipam.ranges ?? (ipam.subnet === undefined ? [] : [[{
    subnet: ipam.subnet,
    ...(ipam.rangeStart === undefined ? {} : { rangeStart: ipam.rangeStart }),
    ...(ipam.rangeEnd === undefined ? {} : { rangeEnd: ipam.rangeEnd }),
    ...(ipam.gateway === undefined ? {} : { gateway: ipam.gateway }),
  }]]);
  if (sets.length === 0 || sets.some((set) => set.length === 0)) throw new IpamConfigError("host-local: no ranges and no subnet");
  return sets.map((set) => set.map(hostLocalRange));
}

// Like host-local's Range.Canonicalize: the gateway defaults to the first
// address and is never handed out, the range defaults to the whole subnet
// without network and (IPv4) broadcast address.
function hostLocalRange(entry: z.infer<typeof hostLocalRangeSchema>): AddressRange {
  const subnet = cidrOrThrow(entry.subnet, "subnet");
  if (subnet.prefix > bitsOf(subnet.family) - 2) throw new IpamConfigError(`host-local: network ${formatCidr(subnet)} too small to allocate from`);
  const gateway = entry.gateway === undefined ? subnet.network + 1n : addressIn(subnet, entry.gateway, "gateway");
  const start = entry.rangeStart === undefined ? subnet.network + 1n : addressIn(subnet, entry.rangeStart, "rangeStart");
  const end = entry.rangeEnd === undefined ? lastAddress(subnet) : addressIn(subnet, entry.rangeEnd, "rangeEnd");
  return clampRange({ subnet, start, end, gateway, exclude: [] }, false);
}

// Whereabouts: `range` is a CIDR, optionally written `first-last/prefix`;
// `range_start`/`range_end` narrow it, `exclude` cuts CIDRs out, and the
// network and last address of the subnet are never handed out.
function whereaboutsRangeSets(ipam: IpamSection): RangeSet[] {
  const entries = [
    ...(ipam.range === undefined ? [] : [{
      range: ipam.range,
      ...(ipam.range_start === undefined ? {} : { range_start: ipam.range_start }),
      ...(ipam.range_end === undefined ? {} : { range_end: ipam.range_end }),
      ...(ipam.exclude === undefined ? {} : { exclude: ipam.exclude }),
    }]),
    ...(ipam.ipRanges ?? []),
  ];
  if (entries.length === 0) throw new IpamConfigError("whereabouts: no range");
  const gateway = ipam.gateway === undefined ? undefined : parseIp(ipam.gateway);
  if (ipam.gateway !== undefined && !gateway) throw new IpamConfigError(`whereabouts: gateway ${ipam.gateway} is not an address`);
  return entries.map((entry) => {
    const range = whereaboutsRange(entry);
    return [gateway && gateway.family === range.subnet.family ? { ...range, gateway: gateway.value } : range];
  });
}

function whereaboutsRange(entry: z.infer<typeof whereaboutsRangeSchema>): AddressRange {
  const dash = entry.range.indexOf("-");
  const subnet = cidrOrThrow(dash < 0 ? entry.range : entry.range.slice(dash + 1), "range");
  const first = dash < 0 ? undefined : addressIn(subnet, entry.range.slice(0, dash), "range start");
  const start = entry.range_start !== undefined ? addressIn(subnet, entry.range_start, "range_start") : first ?? subnet.network;
  const end = entry.range_end !== undefined ? addressIn(subnet, entry.range_end, "range_end") : dash < 0 ? lastAddress(subnet) : subnet.address;
  const exclude = (entry.exclude ?? []).map((text) => cidrOrThrow(text, "exclude"));
  return clampRange({ subnet, start, end, exclude }, true);
}

function clampRange(range: AddressRange, skipLastOfBothFamilies: boolean): AddressRange {
  const { subnet } = range;
  const last = lastAddress(subnet);
  const maxEnd = subnet.family === 4 || skipLastOfBothFamilies ? last - 1n : last;
  const start = range.start > subnet.network ? range.start : subnet.network + 1n;
  const end = range.end < maxEnd ? range.end : maxEnd;
  if (start > end) throw new IpamConfigError(`range ${formatCidr(subnet)} has no usable address`);
  return { ...range, start, end };
}

function staticAddress(text: string): StaticAddress {
  const cidr = cidrOrThrow(text, "static address");
  return { family: cidr.family, address: cidr.address, prefix: cidr.prefix };
}

function cidrOrThrow(text: string, what: string): Cidr {
  const cidr = parseCidr(text.trim());
  if (!cidr) throw new IpamConfigError(`${what} ${JSON.stringify(text)} is not a CIDR`);
  return cidr;
}

function addressIn(subnet: Cidr, text: string, what: string): bigint {
  const address = parseIp(text.trim());
  if (!address) throw new IpamConfigError(`${what} ${JSON.stringify(text)} is not an address`);
  if (!contains(subnet, address)) {
    throw new IpamConfigError(`${what} ${text} is not in network ${formatCidr(subnet)}`);
  }
  return address.value;
}
