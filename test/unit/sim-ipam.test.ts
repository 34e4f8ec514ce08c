import t from "tap";
import { IpamAllocator, IpamConfigError, IpamError, parseNetworkConfig } from "../../hack/sim/ipam.ts";

const config = (ipam: object, extra: object = {}) => JSON.stringify({ cniVersion: "0.4.0", name: "net", type: "macvlan", master: "eth0", ipam, ...extra });
/** The IpamError reason `fn` fails with, or undefined when it succeeds. */
function failure(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof IpamError) return error.reason;
    throw error;
  }
  return undefined;
}
const addressesOf = (allocator: IpamAllocator, owner: string, ipam: object, requested: string[] = []) =>
  allocator.allocate(owner, "net1", parseNetworkConfig(config(ipam)).ipam, requested).map((a) => a.address);

t.test("host-local hands out the lowest free address, skipping network, gateway and broadcast", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[{ subnet: "10.2.0.0/29" }]] };
  const got = ["a", "b", "c", "d", "e"].map((owner) => addressesOf(allocator, owner, ipam)[0]);
  t.same(got, ["10.2.0.2", "10.2.0.3", "10.2.0.4", "10.2.0.5", "10.2.0.6"]);
  t.equal(failure(() => addressesOf(allocator, "f", ipam)), "exhausted", "a /29 has five pod addresses");
  const [first] = allocator.allocate("a", "net1", parseNetworkConfig(config(ipam)).ipam);
  t.same(first, { family: 4, address: "10.2.0.2", prefix: 29, gateway: "10.2.0.1" }, "prefix and default gateway come with the address");
});

t.test("host-local honours rangeStart, rangeEnd and an explicit gateway", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[{ subnet: "10.1.0.0/24", rangeStart: "10.1.0.100", rangeEnd: "10.1.0.102", gateway: "10.1.0.101" }]] };
  t.same(addressesOf(allocator, "a", ipam), ["10.1.0.100"]);
  t.same(addressesOf(allocator, "b", ipam), ["10.1.0.102"]);
  t.equal(failure(() => addressesOf(allocator, "c", ipam)), "exhausted");
});

t.test("host-local legacy top-level subnet/rangeStart/rangeEnd", async (t) => {
  const allocator = new IpamAllocator();
  t.same(addressesOf(allocator, "a", { type: "host-local", subnet: "192.168.1.0/24", rangeStart: "192.168.1.200", rangeEnd: "192.168.1.216" }), ["192.168.1.200"]);
});

t.test("dual-stack host-local ranges give one address per range set, IPv4 and IPv6", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[{ subnet: "10.4.0.0/24" }], [{ subnet: "fd00:4::/64" }]] };
  t.same(addressesOf(allocator, "a", ipam), ["10.4.0.2", "fd00:4::2"]);
  t.same(addressesOf(allocator, "b", ipam), ["10.4.0.3", "fd00:4::3"]);
});

t.test("a range set with several ranges moves on when the first is full", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[
    { subnet: "10.5.0.0/24", rangeStart: "10.5.0.10", rangeEnd: "10.5.0.10" },
    { subnet: "10.6.0.0/24", rangeStart: "10.6.0.20", rangeEnd: "10.6.0.20" },
  ]] };
  t.same(addressesOf(allocator, "a", ipam), ["10.5.0.10"]);
  t.same(addressesOf(allocator, "b", ipam), ["10.6.0.20"]);
  t.equal(failure(() => addressesOf(allocator, "c", ipam)), "exhausted");
});

t.test("IPv6 arithmetic reaches the top of the address space and prints canonical text", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[{ subnet: "FD00:FFFF::/32", rangeStart: "fd00:ffff:ffff:ffff:ffff:ffff:ffff:fffe" }]] };
  t.same(addressesOf(allocator, "a", ipam), ["fd00:ffff:ffff:ffff:ffff:ffff:ffff:fffe"]);
  t.same(addressesOf(allocator, "b", ipam), ["fd00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"], "host-local hands out the last IPv6 address");
  t.equal(failure(() => addressesOf(allocator, "c", ipam)), "exhausted");

  const wide = new IpamAllocator();
  t.same(addressesOf(wide, "a", { type: "host-local", ranges: [[{ subnet: "2001:db8:0:0:1::/80", rangeStart: "2001:DB8::1:0:0:10" }]] }), ["2001:db8::1:0:0:10"]);
});

t.test("whereabouts range in CIDR form: network and broadcast are skipped, host bits do not narrow it", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "whereabouts", range: "192.168.2.225/28" };
  const got = Array.from({ length: 14 }, (_, i) => addressesOf(allocator, `p${i}`, ipam)[0]);
  t.equal(got[0], "192.168.2.225");
  t.equal(got[13], "192.168.2.238");
  t.equal(failure(() => addressesOf(allocator, "late", ipam)), "exhausted", "a /28 has 14 addresses");
});

t.test("whereabouts range_start, range_end and exclude", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "whereabouts", range: "10.3.0.0/24", range_start: "10.3.0.10", range_end: "10.3.0.13", exclude: ["10.3.0.10/31"] };
  t.same(addressesOf(allocator, "a", ipam), ["10.3.0.12"]);
  t.same(addressesOf(allocator, "b", ipam), ["10.3.0.13"]);
  t.equal(failure(() => addressesOf(allocator, "c", ipam)), "exhausted");
});

t.test("whereabouts first-last/prefix form and dual-stack ipRanges", async (t) => {
  const allocator = new IpamAllocator();
  t.same(addressesOf(allocator, "a", { type: "whereabouts", range: "10.7.0.50-10.7.0.51/24" }), ["10.7.0.50"]);
  t.same(addressesOf(allocator, "b", { type: "whereabouts", range: "10.7.0.50-10.7.0.51/24" }), ["10.7.0.51"]);
  t.same(addressesOf(allocator, "c", { type: "whereabouts", ipRanges: [{ range: "10.8.0.0/24" }, { range: "fd00:8::/120" }] }), ["10.8.0.1", "fd00:8::1"]);
});

t.test("static addresses from the config and from the pod's ips request", async (t) => {
  const allocator = new IpamAllocator();
  const [fromConfig] = allocator.allocate("a", "net1", parseNetworkConfig(config({ type: "static", addresses: [{ address: "10.10.0.1/24", gateway: "10.10.0.254" }] })).ipam);
  t.same(fromConfig, { family: 4, address: "10.10.0.1", prefix: 24 });
  t.same(addressesOf(allocator, "b", { type: "static" }, ["10.1.1.5/24", "2001:db8::5/64"]), ["10.1.1.5", "2001:db8::5"]);
  t.same(addressesOf(allocator, "c", { type: "host-local", subnet: "10.1.1.0/24" }), ["10.1.1.2"], "dynamic allocation avoids static addresses in the same subnet");
});

t.test("a requested IP replaces the dynamic address of the range set containing it", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[{ subnet: "10.9.0.0/24" }], [{ subnet: "fd00:9::/64" }]] };
  t.same(addressesOf(allocator, "a", ipam, ["10.9.0.2/24"]), ["10.9.0.2", "fd00:9::2"]);
  t.same(addressesOf(allocator, "b", ipam), ["10.9.0.3", "fd00:9::3"], "the requested address is taken");
  t.equal(failure(() => addressesOf(allocator, "c", ipam, ["10.9.0.2"])), "unavailable", "two pods cannot request the same address");
  t.equal(failure(() => addressesOf(allocator, "c", ipam, ["10.99.0.2"])), "invalid", "an address outside every range is refused");
  t.equal(allocator.inUse("10.9.0.0/24"), 2, "failed requests hold nothing");
});

t.test("release on pod deletion makes the lowest address free again", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[{ subnet: "10.11.0.0/24" }]] };
  t.same(addressesOf(allocator, "a", ipam), ["10.11.0.2"]);
  t.same(addressesOf(allocator, "b", ipam), ["10.11.0.3"]);
  allocator.release("a");
  t.equal(allocator.get("a", "net1"), undefined);
  t.same(addressesOf(allocator, "c", ipam), ["10.11.0.2"]);
  t.same(addressesOf(allocator, "d", ipam), ["10.11.0.4"]);
});

t.test("allocation is idempotent per pod and attachment slot; a second attachment gets its own address", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = parseNetworkConfig(config({ type: "host-local", subnet: "10.12.0.0/24" })).ipam;
  t.same(allocator.allocate("a", "0:ns/net", ipam), allocator.allocate("a", "0:ns/net", ipam));
  t.equal(allocator.allocate("a", "1:ns/net", ipam)[0]?.address, "10.12.0.3");
  allocator.release("a", "0:ns/net");
  t.equal(allocator.inUse("10.12.0.0/24"), 1);
});

t.test("reallocate gives a different address and frees the old one", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = parseNetworkConfig(config({ type: "host-local", subnet: "10.13.0.0/24" })).ipam;
  t.equal(allocator.allocate("a", "s", ipam)[0]?.address, "10.13.0.2");
  t.equal(allocator.allocate("b", "s", ipam)[0]?.address, "10.13.0.3");
  t.equal(allocator.reallocate("a", "s", ipam)[0]?.address, "10.13.0.4");
  t.equal(allocator.get("a", "s")?.[0]?.address, "10.13.0.4");
  t.equal(allocator.allocate("c", "s", ipam)[0]?.address, "10.13.0.2", "the old address is free again");
});

t.test("exhaustion fails only the pod that asked", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = { type: "host-local", ranges: [[{ subnet: "10.14.0.0/30" }], [{ subnet: "fd00:14::/126" }]] };
  t.same(addressesOf(allocator, "a", ipam), ["10.14.0.2", "fd00:14::2"]);
  t.equal(failure(() => addressesOf(allocator, "b", ipam)), "exhausted");
  t.equal(allocator.inUse("fd00:14::/126"), 1, "the IPv6 address picked before the IPv4 set ran out is given back");
  t.same(allocator.get("a", "net1")?.map((a) => a.address), ["10.14.0.2", "fd00:14::2"]);
});

t.test("reserve records addresses a pod already has", async (t) => {
  const allocator = new IpamAllocator();
  allocator.reserve("a", "eth0", [{ address: "10.15.0.2" }]);
  t.same(addressesOf(allocator, "b", { type: "host-local", subnet: "10.15.0.0/24" }), ["10.15.0.3"]);
});

t.test("many allocations stay lowest-free and distinct", async (t) => {
  const allocator = new IpamAllocator();
  const ipam = parseNetworkConfig(config({ type: "host-local", subnet: "10.16.0.0/16" })).ipam;
  const all = Array.from({ length: 3000 }, (_, i) => allocator.allocate(`p${i}`, "s", ipam)[0]?.address);
  t.equal(new Set(all).size, 3000);
  t.equal(all[2999], "10.16.11.185", "3000th address after .0 (network) and .1 (gateway)");
  for (let i = 0; i < 3000; i += 2) allocator.release(`p${i}`);
  t.equal(allocator.allocate("again", "s", ipam)[0]?.address, "10.16.0.2");
});

t.test("NAD configs: conflists, no IPAM, and errors", async (t) => {
  const conflist = JSON.stringify({ cniVersion: "1.0.0", name: "access", plugins: [
    { type: "bridge", bridge: "br1", ipam: { type: "whereabouts", range: "10.20.0.0/24" } },
    { type: "tuning", sysctl: {} },
  ] });
  const parsed = parseNetworkConfig(conflist);
  t.equal(parsed.name, "access");
  t.equal(parsed.ipam.kind, "ranges");
  t.same(parseNetworkConfig(JSON.stringify({ type: "sriov", name: "sriovnet" })).ipam, { kind: "none" }, "no ipam: an attachment without addresses");
  t.same(parseNetworkConfig(JSON.stringify({ type: "macvlan", ipam: { type: "dhcp" } })).ipam, { kind: "none", plugin: "dhcp" });
  t.same(new IpamAllocator().allocate("a", "s", { kind: "none" }), []);
  t.throws(() => parseNetworkConfig("{not json"), IpamConfigError);
  t.throws(() => parseNetworkConfig(config({ type: "host-local", subnet: "10.0.0.0/33" })), IpamConfigError);
  t.throws(() => parseNetworkConfig(config({ type: "host-local", subnet: "10.0.0.0/31" })), /too small/);
  t.throws(() => parseNetworkConfig(config({ type: "host-local", subnet: "10.0.0.0/24", rangeStart: "10.0.1.5" })), /not in network/);
  t.throws(() => parseNetworkConfig(config({ type: "whereabouts" })), /no range/);
  t.throws(() => parseNetworkConfig(JSON.stringify({ plugins: "x" })), IpamConfigError);
});
