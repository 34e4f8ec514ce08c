// Address normalisation: the text Multus (or any CNI) wrote becomes the one
// canonical text the API server and DNS servers agree on, or nothing.
import { isIP } from "node:net";
import type { IpFamily } from "./api.ts";

export type CanonicalAddress = { address: string; family: IpFamily };

/**
 * The canonical form of an address written bare (`10.1.2.3`) or in CIDR form
 * (`10.1.2.3/24`), or undefined when it cannot be published.
 *
 * Loopback, link-local, multicast and unspecified addresses are refused
 * because the API server rejects a whole Endpoints or EndpointSlice write that
 * contains one, so a single odd attachment would stop every other address of
 * the Service from being published. Zone ids (`fe80::1%net1`) only qualify
 * link-local addresses, which are unusable from another pod anyway.
 */
export function canonicalAddress(text: string): CanonicalAddress | undefined {
  // Longest legitimate input: a full IPv6 address with an embedded IPv4 tail
  // and a /128 prefix (49 characters); refusing longer text early keeps hostile
  // annotations cheap.
  if (text.length > 64) return undefined;
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  const bare = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const prefix = slash === -1 ? undefined : trimmed.slice(slash + 1);
  if (bare.includes("%")) return undefined;

  switch (isIP(bare)) {
    case 4: {
      if (prefix !== undefined && !isPrefixLength(prefix, 32)) return undefined;
      const octets = parseIPv4(bare);
      return octets && publishableIPv4(octets);
    }
    case 6: {
      if (prefix !== undefined && !isPrefixLength(prefix, 128)) return undefined;
      const groups = parseIPv6(bare);
      if (!groups) return undefined;
      // An IPv4-mapped address (::ffff:a.b.c.d) is an IPv4 address on the wire;
      // Kubernetes (like Go's net package) treats it as IPv4, so publish it as one.
      if (isIPv4Mapped(groups)) return publishableIPv4(mappedIPv4Octets(groups));
      return publishableIPv6(groups);
    }
    default:
      return undefined;
  }
}

/**
 * Orders canonical addresses: IPv4 before IPv6, then numerically, so lists are
 * stable and read naturally (10.0.0.9 before 10.0.0.10).
 */
export function compareAddresses(a: string, b: string): number {
  const keyA = addressSortKey(a);
  const keyB = addressSortKey(b);
  return keyA < keyB ? -1 : keyA > keyB ? 1 : 0;
}

/** The family of a canonical address, without parsing it again. */
export function addressFamily(canonical: string): IpFamily {
  return canonical.includes(":") ? "IPv6" : "IPv4";
}

// A fixed-width hexadecimal key whose string order is the numeric order.
function addressSortKey(canonical: string): string {
  if (addressFamily(canonical) === "IPv4") {
    const octets = parseIPv4(canonical) ?? [];
    return "4" + octets.map((octet) => octet.toString(16).padStart(2, "0")).join("");
  }
  const groups = parseIPv6(canonical) ?? [];
  return "6" + groups.map((group) => group.toString(16).padStart(4, "0")).join("");
}

function isPrefixLength(text: string, max: number): boolean {
  return /^(0|[1-9][0-9]{0,2})$/.test(text) && Number(text) <= max;
}

// Octets with a leading zero are refused: some parsers (inet_aton, older Go)
// read them as octal, others as decimal, so their meaning is ambiguous.
function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    octets.push(value);
  }
  return octets;
}

// Eight 16-bit groups, expanding `::` and an embedded IPv4 tail.
function parseIPv6(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0] ?? "");
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "") : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

function groupsOf(text: string): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (const [index, part] of parts.entries()) {
    if (part.includes(".") && index === parts.length - 1) {
      const octets = parseIPv4(part);
      if (!octets) return undefined;
      const [a = 0, b = 0, c = 0, d = 0] = octets;
      groups.push((a << 8) | b, (c << 8) | d);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

function isIPv4Mapped(groups: number[]): boolean {
  return groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
}

function mappedIPv4Octets(groups: number[]): number[] {
  const high = groups[6] ?? 0;
  const low = groups[7] ?? 0;
  return [high >> 8, high & 0xff, low >> 8, low & 0xff];
}

function publishableIPv4(octets: number[]): CanonicalAddress | undefined {
  const [first = 0, second = 0] = octets;
  const unspecified = octets.every((octet) => octet === 0);
  const loopback = first === 127;
  const linkLocal = first === 169 && second === 254;
  const multicast = first >= 224 && first <= 239;
  if (unspecified || loopback || linkLocal || multicast) return undefined;
  return { address: octets.join("."), family: "IPv4" };
}

function publishableIPv6(groups: number[]): CanonicalAddress | undefined {
  const first = groups[0] ?? 0;
  const unspecified = groups.every((group) => group === 0);
  const loopback = groups.slice(0, 7).every((group) => group === 0) && groups[7] === 1;
  const linkLocal = (first & 0xffc0) === 0xfe80;
  const multicast = (first & 0xff00) === 0xff00;
  if (unspecified || loopback || linkLocal || multicast) return undefined;
  return { address: formatIPv6(groups), family: "IPv6" };
}

// RFC 5952: lowercase hex without leading zeros; the longest run of two or
// more zero groups (the first one on a tie) becomes `::`.
function formatIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < groups.length; ) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < groups.length && groups[end] === 0) end += 1;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}
