import t from "tap";
import { canonicalAddress, compareAddresses } from "../../common/addresses.ts";

t.test("addresses become their canonical text, or are dropped", async (t) => {
  const table: [input: string, expected: string | undefined, family?: "IPv4" | "IPv6"][] = [
    ["10.1.2.3", "10.1.2.3", "IPv4"],
    ["10.1.2.3/24", "10.1.2.3", "IPv4"],
    ["1.2.3.4/32", "1.2.3.4", "IPv4"],
    ["1.2.3.4/0", "1.2.3.4", "IPv4"],
    ["255.255.255.255", "255.255.255.255", "IPv4"],
    [" 192.168.1.205 ", "192.168.1.205", "IPv4"],
    ["2001:ABBA::2234/64", "2001:abba::2234", "IPv6"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", "IPv6"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", "IPv6"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", "IPv6"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1", "IPv6"],
    ["fd02:0:0:1::2ed", "fd02:0:0:1::2ed", "IPv6"],
    ["10:2400:1::2", "10:2400:1::2", "IPv6"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0", "IPv6"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8", "IPv6"],
    ["fd00::", "fd00::", "IPv6"],
    ["::ffff:10.1.2.3", "10.1.2.3", "IPv4"],
    ["::FFFF:a01:203", "10.1.2.3", "IPv4"],
    ["::ffff:127.0.0.1", undefined],
    ["0:1:0:0:0:ffff:a01:203", "0:1::ffff:a01:203", "IPv6"],
    ["::fffe:a01:203", "::fffe:a01:203", "IPv6"],
    ["::1.2.3.4", "::102:304", "IPv6"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221", "IPv6"],
    ["fd00::1/128", "fd00::1", "IPv6"],
    ["169.1.2.3", "169.1.2.3", "IPv4"],
    ["10.254.1.2", "10.254.1.2", "IPv4"],
    ["::2", "::2", "IPv6"],
    // unusable
    ["127.0.0.1", undefined],
    ["127.255.0.9/8", undefined],
    ["::1", undefined],
    ["::1/128", undefined],
    ["169.254.10.1", undefined],
    ["fe80::1", undefined],
    ["febf::1", undefined],
    ["fe80::1%net1", undefined],
    ["fd00::1%net1", undefined],
    ["224.0.0.1", undefined],
    ["239.255.255.250", undefined],
    ["ff02::1", undefined],
    ["ff05::1:3", undefined],
    ["0.0.0.0", undefined],
    ["0.0.0.0/0", undefined],
    ["::", undefined],
    ["::/0", undefined],
    // unparsable or ambiguous
    ["", undefined],
    ["10.1.2", undefined],
    ["10.1.2.3.4", undefined],
    ["10.01.2.3", undefined],
    ["010.1.2.3", undefined],
    ["256.1.2.3", undefined],
    ["0x0a.1.2.3", undefined],
    ["10.1.2.3/33", undefined],
    ["10.1.2.3/024", undefined],
    ["10.1.2.3/", undefined],
    ["10.1.2.3/24/24", undefined],
    ["fd00::1/129", undefined],
    ["1::2::3", undefined],
    ["12345::", undefined],
    ["g::1", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["::ffff:10.01.2.3", undefined],
    ["example.com", undefined],
    ["10.1.2.3 ".repeat(100), undefined],
  ];
  for (const [input, expected, family] of table) {
    const result = canonicalAddress(input);
    const want = expected === undefined ? undefined : { address: expected, family };
    t.same(result, want, JSON.stringify(input).slice(0, 50));
  }
});

t.test("the fe80::/10 link-local block ends at febf, fec0 is publishable", async (t) => {
  t.equal(canonicalAddress("fec0::1")?.address, "fec0::1");
  t.equal(canonicalAddress("fe7f::1")?.address, "fe7f::1");
});

t.test("addresses sort IPv4 first, then numerically", async (t) => {
  const sorted = ["2001:db8::10", "10.0.0.10", "2001:db8::9", "10.0.0.9", "9.255.255.255", "10:2400:1::2"].sort(
    compareAddresses,
  );
  t.same(sorted, ["9.255.255.255", "10.0.0.9", "10.0.0.10", "10:2400:1::2", "2001:db8::9", "2001:db8::10"]);
});

t.test("an address compares equal only to itself, so the callers' tie-break (the pod's uid) decides between pods sharing one", async (t) => {
  for (const address of ["10.0.0.9", "2001:db8::9"]) t.equal(compareAddresses(address, address), 0, address);
  t.equal(compareAddresses("10.0.0.9", "10.0.0.10"), -1);
  t.equal(compareAddresses("10.0.0.10", "10.0.0.9"), 1);
  t.equal(compareAddresses("2001:db8::9", "10.0.0.9"), 1);
});
