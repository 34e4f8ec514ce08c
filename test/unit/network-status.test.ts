import t from "tap";
import { annotations } from "../../common/api.ts";
import { parseNetworkStatus } from "../../common/network-status.ts";

const singular = annotations.networkStatus;
const legacy = annotations.legacyNetworkStatus;

t.test("a pod without the annotation has no attachments and no error", async (t) => {
  t.same(parseNetworkStatus(undefined), { ok: true, attachments: [] });
  t.same(parseNetworkStatus({}), { ok: true, attachments: [] });
  t.same(parseNetworkStatus({ [singular]: "  " }), { ok: true, attachments: [] });
});

t.test("entries keep name, interface, addresses and the default mark; extra fields are ignored", async (t) => {
  const value = JSON.stringify([
    { name: "cbr0", ips: ["10.244.1.73"], default: true, dns: {} },
    {
      name: "default/sriovnet1",
      interface: "net1",
      ips: ["10.56.217.1"],
      mac: "86:1d:96:ff:55:0d",
      dns: { nameservers: ["10.0.0.10"] },
      "device-info": { type: "pci", version: "1.0.0", pci: { "pci-address": "0000:3b:10.5" } },
      gateway: ["10.56.217.254"],
    },
    { name: "blah/sriov-egress1", interface: "egress1", dns: {} },
    { name: "blah/nulls", interface: null, ips: null, default: null },
  ]);
  t.same(parseNetworkStatus({ [singular]: value }), {
    ok: true,
    attachments: [
      { name: "cbr0", ips: ["10.244.1.73"], default: true },
      { name: "default/sriovnet1", interface: "net1", ips: ["10.56.217.1"], default: false },
      { name: "blah/sriov-egress1", interface: "egress1", ips: [], default: false },
      { name: "blah/nulls", ips: [], default: false },
    ],
  });
});

t.test("the singular annotation wins over the legacy one; the legacy one is read when alone", async (t) => {
  const fresh = JSON.stringify([{ name: "networks/core", ips: ["10.0.0.2"] }]);
  const stale = JSON.stringify([{ name: "core", ips: ["10.0.0.1"] }]);
  const both = parseNetworkStatus({ [singular]: fresh, [legacy]: stale });
  t.same(both.ok && both.attachments.map((a) => a.ips), [["10.0.0.2"]]);
  const onlyLegacy = parseNetworkStatus({ [legacy]: stale });
  t.same(onlyLegacy.ok && onlyLegacy.attachments.map((a) => a.ips), [["10.0.0.1"]]);
  const brokenLegacy = parseNetworkStatus({ [singular]: fresh, [legacy]: "{{{" });
  t.ok(brokenLegacy.ok, "a malformed legacy annotation next to a good singular one is irrelevant");
  const brokenSingular = parseNetworkStatus({ [singular]: "{{{", [legacy]: stale });
  t.notOk(brokenSingular.ok, "a malformed singular annotation is not papered over by the legacy one");
});

t.test("malformed values are errors that say what is wrong", async (t) => {
  const table: [value: string, fragment: RegExp][] = [
    ["not json", /network-status: not valid JSON/],
    ['{"name": "x"}', /expected a JSON list/],
    ["null", /expected a JSON list/],
    ['[{"name": 1}]', /entry 0 field name/],
    ['[{"ips": ["1.2.3.4"]}]', /entry 0 field name/],
    ['[{"name": "a"}, {"name": "b", "ips": "10.0.0.1"}]', /entry 1 field ips/],
    ['[{"name": "a", "ips": [10]}]', /entry 0 field ips\.0/],
    ['[{"name": "a", "interface": 3}]', /entry 0 field interface/],
    ['[{"name": "a", "default": "yes"}]', /entry 0 field default/],
    ['["a"]', /entry 0/],
  ];
  for (const [value, fragment] of table) {
    const result = parseNetworkStatus({ [singular]: value });
    t.notOk(result.ok, value);
    if (!result.ok) {
      t.match(result.error, fragment, value);
      t.ok(result.error.length < 200, "short message");
    }
  }
  const legacyError = parseNetworkStatus({ [legacy]: "[1]" });
  t.match(!legacyError.ok && legacyError.error, /^k8s\.v1\.cni\.cncf\.io\/networks-status: /);
});

t.test("10,000 entries, 1 MiB values and deep nesting neither crash nor flood the message", async (t) => {
  const entries = Array.from({ length: 10_000 }, (_, i) => ({
    name: `ns/net-${i}`,
    interface: `net${i}`,
    ips: [`10.${(i >> 8) & 255}.${i & 255}.1`],
    mac: "02:00:00:00:00:01",
    dns: {},
  }));
  const big = parseNetworkStatus({ [singular]: JSON.stringify(entries) });
  t.equal(big.ok && big.attachments.length, 10_000);

  const badEverywhere = JSON.stringify(entries.map((entry) => ({ ...entry, ips: [1] })));
  const bad = parseNetworkStatus({ [singular]: badEverywhere });
  t.match(!bad.ok && bad.error, /entry 0 field ips\.0/, "one issue reported, not ten thousand");
  t.ok(!bad.ok && bad.error.length < 200);

  const padding = "x".repeat(1 << 20);
  const huge = parseNetworkStatus({ [singular]: JSON.stringify([{ name: "a", ips: ["10.0.0.1"], note: padding }]) });
  t.ok(huge.ok);
  const deep = parseNetworkStatus({ [singular]: "[".repeat(500_000) + "]".repeat(500_000) });
  t.notOk(deep.ok, "deep nesting is malformed, not a crash");
  const hugeName = parseNetworkStatus({ [singular]: JSON.stringify([{ name: padding }]) });
  t.ok(hugeName.ok);
});

t.test("an error message says where the first problem is and what was expected there, and nothing else", async (t) => {
  const table: [value: string, error: string][] = [
    ['{"name": "x"}', "expected a JSON list of attachments"],
    ["null", "expected a JSON list of attachments"],
    ['["a"]', "entry 0: Invalid input: expected object, received string"],
    ['[{"name": 1}]', "entry 0 field name: Invalid input: expected string, received number"],
    ['[{"name": "a"}, {"name": "b", "ips": "10.0.0.1"}]', "entry 1 field ips: Invalid input: expected array, received string"],
    ['[{"name": "a", "ips": [10]}]', "entry 0 field ips.0: Invalid input: expected string, received number"],
  ];
  for (const [value, error] of table) {
    t.same(parseNetworkStatus({ [singular]: value }), { ok: false, error: `${singular}: ${error}` }, value);
  }
});
