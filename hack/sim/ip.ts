// IP address arithmetic for the simulated cluster: IPv4 and IPv6 addresses as
// bigints, so one code path serves both families.

export type Family = 4 | 6;

export type Address = { family: Family; value: bigint };

/** A prefix as written: `address` keeps any host bits, `network` has them cleared. */
export type Cidr = { family: Family; address: bigint; network: bigint; prefix: number };

export function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail); undefined if invalid. */
export function parseIp(text: string): Address | undefined {
  if (text.includes(":")) {
    const value = parseIpv6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === undefined ? undefined : { family: 4, value };
}

/** Parses `address/prefix`; undefined if invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!address || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bitsOf(address.family)) return undefined;
  return { family: address.family, address: address.value, network: address.value & netmask(address.family, prefix), prefix };
}

/** Canonical text: dotted quad, or RFC 5952 (lower case, longest zero run compressed). */
export function formatIp(address: Address): string {
  return address.family === 4 ? formatIpv4(address.value) : formatIpv6(address.value);
}

/** Canonical `network/prefix` text. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

/** Normalises address text to its canonical form; undefined if it is not an address. */
export function canonicalIp(text: string): string | undefined {
  const address = parseIp(text);
  return address && formatIp(address);
}

export function netmask(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** The last address of the prefix (the IPv4 broadcast address). */
export function lastAddress(cidr: Cidr): bigint {
  return cidr.network | (((1n << BigInt(bitsOf(cidr.family))) - 1n) ^ netmask(cidr.family, cidr.prefix));
}

export function contains(cidr: Cidr, address: Address): boolean {
  return address.family === cidr.family && (address.value & netmask(cidr.family, cidr.prefix)) === cidr.network;
}

/** The `index`-th subnet of length `subnetPrefix` inside `parent`, or undefined past its end. */
export function nthSubnet(parent: Cidr, subnetPrefix: number, index: number): Cidr | undefined {
  if (subnetPrefix < parent.prefix || subnetPrefix > bitsOf(parent.family)) return undefined;
  const count = 1n << BigInt(subnetPrefix - parent.prefix);
  const i = BigInt(index);
  if (i < 0n || i >= count) return undefined;
  const network = parent.network + (i << BigInt(bitsOf(parent.family) - subnetPrefix));
  return { family: parent.family, address: network, network, prefix: subnetPrefix };
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    // Leading zeros are rejected, as Go's net.ParseIP does: they read as octal elsewhere.
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  if (text.includes("%")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string): number[] | undefined => {
    if (half === "") return [];
    const groups: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (v4 === undefined) return undefined;
        groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = groupsOf(halves[0] ?? "");
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "") : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  // An embedded IPv4 tail is only valid at the very end of the address.
  if (halves.length === 2 && (halves[0] ?? "").includes(".")) return undefined;
  let value = 0n;
  for (const group of [...head, ...new Array<number>(missing).fill(0), ...tail]) value = (value << 16n) | BigInt(group);
  return value;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
}

function formatIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}
