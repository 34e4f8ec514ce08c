// The address allocator behind the fake Multus and the fake kubelet: hands out
// the lowest free address of each range set of an IPAM config, remembers who
// holds it, and takes it back when the pod goes away.
//
// Addresses are unique per family across the whole simulated cluster, not per
// network as two isolated real networks could allow: a simulation that never
// publishes the same address for two pods keeps every test unambiguous.
import { bitsOf, contains, formatIp, lastAddress, netmask, parseCidr, parseIp, type Family } from "./ip.ts";
import type { AddressRange, IpamConfig, RangeSet, StaticAddress } from "./ipam-config.ts";

export { IpamConfigError, parseNetworkConfig, type IpamConfig, type NetworkConfig } from "./ipam-config.ts";

export type AllocatedAddress = {
  family: Family;
  /** Canonical text, without prefix length. */
  address: string;
  prefix: number;
  gateway?: string;
};

export type IpamErrorReason = "exhausted" | "unavailable" | "invalid";

/** An allocation that failed for one pod's attachment; nothing else is affected. */
export class IpamError extends Error {
  override name = "IpamError";
  readonly reason: IpamErrorReason;
  constructor(reason: IpamErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

type Held = { family: Family; value: bigint; out: AllocatedAddress };

/** Per range, an address below which nothing is free. */
type Hint = { start: bigint; end: bigint; hint: bigint };

export class IpamAllocator {
  /** Who holds each address, per family. Static addresses may be held by several pods, as the static plugin allows. */
  readonly #holders = new Map<Family, Map<bigint, Set<string>>>([[4, new Map()], [6, new Map()]]);
  /** What each owner holds, per slot (one slot per attachment). */
  readonly #held = new Map<string, Map<string, Held[]>>();
  /** Per range, an address below which nothing is free: keeps "lowest free" cheap for 10,000 pods. */
  readonly #hints = new Map<string, Hint>();
  /** The same hints by subnet, and the prefix lengths in use, so that a release finds its ranges without a scan of all. */
  readonly #hintsBySubnet = new Map<string, Hint[]>();
  readonly #prefixes = new Map<Family, Set<number>>([[4, new Set()], [6, new Set()]]);

  /**
   * The addresses of `owner`'s attachment `slot`: the ones it already holds,
   * or new ones, one per range set (lowest free first), static addresses of
   * the config, and `requested` addresses (the pod's `ips` request) where the
   * config accepts them. Throws IpamError and holds nothing new on failure.
   */
  allocate(owner: string, slot: string, ipam: IpamConfig, requested: readonly string[] = []): AllocatedAddress[] {
    const existing = this.#held.get(owner)?.get(slot);
    if (existing) return existing.map((held) => held.out);
    const taken = this.#pick(holderKey(owner, slot), ipam, requested);
    this.#slots(owner).set(slot, taken);
    return taken.map((held) => held.out);
  }

  /**
   * New addresses for an attachment that already has some (a pod "changing
   * its address"): the lowest free ones other than the current, which are
   * then released. Static addresses cannot change.
   */
  reallocate(owner: string, slot: string, ipam: IpamConfig): AllocatedAddress[] {
    const previous = this.#held.get(owner)?.get(slot);
    if (!previous) return this.allocate(owner, slot, ipam);
    const holder = holderKey(owner, slot);
    // The current addresses stay held while picking, so none of them comes back.
    const next = this.#pick(holder, ipam, []);
    for (const held of previous) {
      if (!next.some((n) => n.family === held.family && n.value === held.value)) this.#free(holder, held);
    }
    this.#slots(owner).set(slot, next);
    return next.map((held) => held.out);
  }

  /** Records addresses a pod already has (found on the pod after a restart of the simulation). */
  reserve(owner: string, slot: string, addresses: readonly { address: string; prefix?: number }[]): AllocatedAddress[] {
    this.release(owner, slot);
    const holder = holderKey(owner, slot);
    const taken: Held[] = [];
    for (const entry of addresses) {
      const parsed = parseIp(entry.address);
      if (!parsed) continue;
      const prefix = entry.prefix ?? bitsOf(parsed.family);
      const held = { family: parsed.family, value: parsed.value, out: { family: parsed.family, address: formatIp(parsed), prefix } };
      this.#take(holder, held);
      taken.push(held);
    }
    this.#slots(owner).set(slot, taken);
    return taken.map((held) => held.out);
  }

  get(owner: string, slot: string): AllocatedAddress[] | undefined {
    return this.#held.get(owner)?.get(slot)?.map((held) => held.out);
  }

  /** Frees one slot of the owner, or everything it holds. */
  release(owner: string, slot?: string): void {
    const slots = this.#held.get(owner);
    if (!slots) return;
    for (const [name, held] of slots) {
      if (slot !== undefined && name !== slot) continue;
      for (const entry of held) this.#free(holderKey(owner, name), entry);
      slots.delete(name);
    }
    if (slots.size === 0) this.#held.delete(owner);
  }

  /** Number of addresses in use inside `cidr` (for tests and diagnostics). */
  inUse(cidr: string): number {
    const parsed = parseCidr(cidr);
    if (!parsed) return 0;
    let count = 0;
    for (const value of this.#holders.get(parsed.family)?.keys() ?? []) {
      if (contains(parsed, { family: parsed.family, value })) count++;
    }
    return count;
  }

  /** Takes the addresses for one attachment under `holder`; takes nothing if any of them cannot be had. */
  #pick(holder: string, ipam: IpamConfig, requested: readonly string[]): Held[] {
    const taken: Held[] = [];
    try {
      const fixed = ipam.kind === "none" ? [] : requested.map(requestedAddress);
      if (ipam.kind === "static") {
        for (const held of [...ipam.addresses, ...fixed].map(staticHeld)) {
          this.#take(holder, held);
          taken.push(held);
        }
      } else if (ipam.kind === "ranges") {
        this.#pickFromRanges(holder, ipam.rangeSets, fixed, taken);
      }
      return taken;
    } catch (error) {
      for (const held of taken) this.#free(holder, held);
      throw error;
    }
  }

  // As host-local does with the `ips` runtime config: each requested address
  // takes the place of a dynamic one in the range set that contains it.
  #pickFromRanges(holder: string, rangeSets: RangeSet[], requested: StaticAddress[], taken: Held[]) {
    const fixed = new Map<number, Held>();
    for (const address of requested) {
      const index = rangeSets.findIndex((set) => set.some((range) => inRange(range, address)));
      const text = formatIp({ family: address.family, value: address.address });
      if (index < 0 || fixed.has(index)) throw new IpamError("invalid", `requested IP ${text} is not in any range set (or two are in the same)`);
      const range = rangeSets[index]?.find((r) => inRange(r, address));
      if (!range || range.gateway === address.address || isExcluded(range, address.address)) {
        throw new IpamError("unavailable", `requested IP ${text} is reserved in its range`);
      }
      if (this.#heldByOther(holder, address.family, address.address)) {
        throw new IpamError("unavailable", `requested IP ${text} is already allocated`);
      }
      fixed.set(index, rangeHeld(range, address.address));
    }
    for (const [index, set] of rangeSets.entries()) {
      const held = fixed.get(index) ?? this.#lowestFree(set);
      this.#take(holder, held);
      taken.push(held);
    }
  }

  #lowestFree(set: RangeSet): Held {
    for (const range of set) {
      const key = rangeKey(range);
      let entry = this.#hints.get(key);
      if (!entry) {
        entry = { start: range.start, end: range.end, hint: range.start };
        this.#hints.set(key, entry);
        const { family, network, prefix } = range.subnet;
        const subnet = subnetKey(family, network, prefix);
        this.#hintsBySubnet.set(subnet, [...(this.#hintsBySubnet.get(subnet) ?? []), entry]);
        this.#prefixes.get(family)?.add(prefix);
      }
      const used = this.#holders.get(range.subnet.family) ?? new Map<bigint, Set<string>>();
      let value = entry.hint;
      while (value <= range.end) {
        const excluded = range.exclude.find((cidr) => contains(cidr, { family: cidr.family, value }));
        if (excluded) {
          value = lastAddress(excluded) + 1n;
        } else if (value === range.gateway || used.has(value)) {
          value++;
        } else {
          entry.hint = value + 1n;
          return rangeHeld(range, value);
        }
      }
      entry.hint = value;
    }
    const ranges = set.map((range) => `${formatIp({ family: range.subnet.family, value: range.start })}-${formatIp({ family: range.subnet.family, value: range.end })}`);
    throw new IpamError("exhausted", `no free address in ${ranges.join(", ")}`);
  }

  #heldByOther(holder: string, family: Family, value: bigint): boolean {
    const holders = this.#holders.get(family)?.get(value);
    return holders !== undefined && [...holders].some((h) => h !== holder);
  }

  #take(holder: string, held: Held) {
    const byValue = this.#holders.get(held.family);
    if (!byValue) return;
    const holders = byValue.get(held.value) ?? new Set<string>();
    holders.add(holder);
    byValue.set(held.value, holders);
  }

  #free(holder: string, held: Held) {
    const byValue = this.#holders.get(held.family);
    const holders = byValue?.get(held.value);
    if (!byValue || !holders) return;
    holders.delete(holder);
    if (holders.size > 0) return;
    byValue.delete(held.value);
    for (const prefix of this.#prefixes.get(held.family) ?? []) {
      const subnet = subnetKey(held.family, held.value & netmask(held.family, prefix), prefix);
      for (const entry of this.#hintsBySubnet.get(subnet) ?? []) {
        if (held.value >= entry.start && held.value <= entry.end && held.value < entry.hint) entry.hint = held.value;
      }
    }
  }

  #slots(owner: string): Map<string, Held[]> {
    let slots = this.#held.get(owner);
    if (!slots) {
      slots = new Map();
      this.#held.set(owner, slots);
    }
    return slots;
  }
}

function holderKey(owner: string, slot: string): string {
  return `${owner}\u0000${slot}`;
}

function subnetKey(family: Family, network: bigint, prefix: number): string {
  return `${family}:${network}/${prefix}`;
}

function rangeKey(range: AddressRange): string {
  return `${range.subnet.family}:${range.subnet.network}/${range.subnet.prefix}:${range.start}-${range.end}`;
}

function inRange(range: AddressRange, address: StaticAddress): boolean {
  return address.family === range.subnet.family && address.address >= range.start && address.address <= range.end;
}

function isExcluded(range: AddressRange, value: bigint): boolean {
  return range.exclude.some((cidr) => contains(cidr, { family: cidr.family, value }));
}

function requestedAddress(text: string): StaticAddress {
  const cidr = text.includes("/") ? parseCidr(text.trim()) : undefined;
  if (cidr) return { family: cidr.family, address: cidr.address, prefix: cidr.prefix };
  const address = text.includes("/") ? undefined : parseIp(text.trim());
  if (!address) throw new IpamError("invalid", `requested IP ${JSON.stringify(text)} is not an address`);
  return { family: address.family, address: address.value, prefix: bitsOf(address.family) };
}

function rangeHeld(range: AddressRange, value: bigint): Held {
  const family = range.subnet.family;
  const out: AllocatedAddress = { family, address: formatIp({ family, value }), prefix: range.subnet.prefix };
  if (range.gateway !== undefined) out.gateway = formatIp({ family, value: range.gateway });
  return { family, value, out };
}

function staticHeld(address: StaticAddress): Held {
  return { family: address.family, value: address.address, out: { family: address.family, address: formatIp({ family: address.family, value: address.address }), prefix: address.prefix } };
}
