import { readFileSync } from "node:fs";
import t from "tap";
import { parse } from "yaml";
import { IpamAllocator, parseNetworkConfig, type AllocatedAddress, type IpamConfig } from "../../hack/sim/ipam.ts";
import {
  attachmentSlot,
  legacyNetworkStatusAnnotation,
  macAddress,
  nadKey,
  networkStatusAnnotation,
  networkStatusFor,
  NetworksRequestError,
  parseNetworksRequest,
  type NadSummary,
  type PodLike,
} from "../../hack/sim/network-status.ts";

const seedDeployment = parse(readFileSync(new URL("../../../shared/fixtures/seed-samples/multi.yaml", import.meta.url), "utf8")) as {
  spec: { template: { metadata: { annotations: Record<string, string> } } };
};
const seedRequest = seedDeployment.spec.template.metadata.annotations["k8s.v1.cni.cncf.io/networks"] ?? "";

const nadConfigs: Record<string, string> = {
  "networks/core": JSON.stringify({ cniVersion: "0.3.1", name: "core", type: "macvlan", master: "eth0", ipam: { type: "host-local", subnet: "10.100.0.0/24", rangeStart: "10.100.0.10" } }),
  "networks/access": JSON.stringify({ cniVersion: "0.3.1", name: "access-net", type: "bridge", ipam: { type: "whereabouts", ipRanges: [{ range: "192.168.100.0/24" }, { range: "fd00:100::/64" }] } }),
  "default/plain": JSON.stringify({ cniVersion: "0.3.1", type: "sriov" }),
  "networks/static": JSON.stringify({ cniVersion: "0.3.1", name: "static", type: "macvlan", capabilities: { ips: true }, ipam: { type: "static" } }),
};

type Nads = Map<string, NadSummary & { ipam: IpamConfig }>;

function nads(keys: string[] = Object.keys(nadConfigs)): Nads {
  return new Map(keys.map((key) => {
    const config = parseNetworkConfig(nadConfigs[key] ?? "");
    return [key, { ...(config.name ? { cniName: config.name } : {}), ipam: config.ipam }];
  }));
}

function pod(name: string, request: string, podIPs: string[] = ["10.244.1.5"]): PodLike {
  return {
    metadata: { namespace: "default", name, uid: `uid-${name}`, annotations: { "k8s.v1.cni.cncf.io/networks": request } },
    status: { podIP: podIPs[0] ?? "", podIPs: podIPs.map((ip) => ({ ip })) },
  };
}

/** What the fake Multus does for a pod: allocate each requested attachment whose NAD exists. */
function allocate(allocator: IpamAllocator, p: PodLike, known: Nads): Map<string, AllocatedAddress[]> {
  const allocations = new Map<string, AllocatedAddress[]>();
  const selections = parseNetworksRequest(p.metadata?.annotations?.["k8s.v1.cni.cncf.io/networks"], p.metadata?.namespace ?? "");
  for (const [index, selection] of selections.entries()) {
    const nad = known.get(nadKey(selection.namespace, selection.name));
    if (!nad) continue;
    const slot = attachmentSlot(index, selection);
    allocations.set(slot, allocator.allocate(p.metadata?.uid ?? "", slot, nad.ipam, selection.ips ?? []));
  }
  return allocations;
}

t.test("the seed Deployment's three pods get networks/core and networks/access on the requested interfaces, with distinct addresses", async (t) => {
  const allocator = new IpamAllocator();
  const known = nads();
  const statuses = ["utils-0", "utils-1", "utils-2"].map((name, i) => {
    const p = pod(name, seedRequest, [`10.244.${i}.2`]);
    return networkStatusFor(p, known, allocate(allocator, p, known), { defaultNetworkName: "kindnet" });
  });
  for (const [i, status] of statuses.entries()) {
    t.equal(status.annotation, networkStatusAnnotation);
    t.same(status.entries.map((e) => [e.name, e.interface, e.default ?? false]), [
      ["kindnet", "eth0", true],
      ["networks/core", "core", false],
      ["networks/access", "access", false],
    ]);
    t.same(status.entries[0]?.ips, [`10.244.${i}.2`], "the default entry carries the pod IPs");
    t.same(JSON.parse(status.value), status.entries, "the annotation is the entries as JSON");
  }
  const core = statuses.map((s) => s.entries[1]?.ips);
  const access = statuses.map((s) => s.entries[2]?.ips);
  t.same(core, [["10.100.0.10"], ["10.100.0.11"], ["10.100.0.12"]]);
  t.same(access, [["192.168.100.1", "fd00:100::1"], ["192.168.100.2", "fd00:100::2"], ["192.168.100.3", "fd00:100::3"]], "dual-stack whereabouts: one address per range");
  const macs = statuses.flatMap((s) => s.entries.map((e) => e.mac));
  t.equal(new Set(macs).size, 9, "every interface has its own MAC");
});

t.test("the annotation text is Multus' own: each entry indented by json.MarshalIndent, joined by commas", async (t) => {
  const allocator = new IpamAllocator();
  const known = nads(["networks/core"]);
  const p = pod("a", "networks/core");
  const status = networkStatusFor(p, known, allocate(allocator, p, known));
  const expected = `[{
    "name": "kindnet",
    "interface": "eth0",
    "ips": [
        "10.244.1.5"
    ],
    "mac": "${macAddress("uid-a/eth0")}",
    "default": true,
    "dns": {}
},{
    "name": "networks/core",
    "interface": "net1",
    "ips": [
        "10.100.0.10"
    ],
    "mac": "${macAddress("uid-a/net1")}",
    "dns": {}
}]`;
  t.equal(status.value, expected);
});

t.test("comma form: namespaces, @interface, the pod's namespace by default, net<n> by position", async (t) => {
  t.same(parseNetworksRequest("networks/core@core, plain ,networks/access", "default"), [
    { namespace: "networks", name: "core", interface: "core" },
    { namespace: "default", name: "plain" },
    { namespace: "networks", name: "access" },
  ]);
  const allocator = new IpamAllocator();
  const known = nads();
  const p = pod("b", "networks/core@core, plain ,networks/access");
  const status = networkStatusFor(p, known, allocate(allocator, p, known));
  t.same(status.entries.map((e) => [e.name, e.interface, e.ips]), [
    ["kindnet", "eth0", ["10.244.1.5"]],
    ["networks/core", "core", ["10.100.0.10"]],
    ["default/plain", "net2", undefined],
    ["networks/access", "net3", ["192.168.100.1", "fd00:100::1"]],
  ], "a network without IPAM has no ips at all, as Multus omits them");
});

t.test("legacy mode writes networks-status with the bare names Multus before v3.6 used", async (t) => {
  const allocator = new IpamAllocator();
  const known = nads();
  const p = pod("c", seedRequest);
  const status = networkStatusFor(p, known, allocate(allocator, p, known), { legacy: true, defaultNetworkName: "cbr0" });
  t.equal(status.annotation, legacyNetworkStatusAnnotation);
  t.same(status.entries.map((e) => e.name), ["cbr0", "core", "access-net"], "the CNI config's name, which is what old Multus published");
  const unnamed: Nads = new Map([["networks/core", { ipam: parseNetworkConfig(nadConfigs["networks/core"] ?? "").ipam }]]);
  const q = pod("d", "networks/core");
  t.same(networkStatusFor(q, unnamed, allocate(allocator, q, unnamed), { legacy: true }).entries[1]?.name, "core", "the NAD's name when the config has none");
});

t.test("a missing NAD leaves the pod without that attachment, and later ones keep their position", async (t) => {
  const allocator = new IpamAllocator();
  const known = nads(["networks/access"]);
  const p = pod("e", '[{"name":"core","namespace":"networks"},{"name":"access","namespace":"networks"}]');
  const status = networkStatusFor(p, known, allocate(allocator, p, known));
  t.same(status.entries.map((e) => [e.name, e.interface]), [["kindnet", "eth0"], ["networks/access", "net2"]]);
  const withoutAny = networkStatusFor(p, new Map(), new Map());
  t.same(withoutAny.entries.map((e) => e.name), ["kindnet"], "only the cluster network is left");
});

t.test("a pod attached twice to one network gets two interfaces and two addresses", async (t) => {
  const allocator = new IpamAllocator();
  const known = nads();
  const p = pod("f", '[{"name":"core","namespace":"networks"},{"name":"core","namespace":"networks"}]');
  const status = networkStatusFor(p, known, allocate(allocator, p, known));
  t.same(status.entries.slice(1).map((e) => [e.interface, e.ips]), [["net1", ["10.100.0.10"]], ["net2", ["10.100.0.11"]]]);
});

t.test("ips and mac requested by the pod are used", async (t) => {
  const allocator = new IpamAllocator();
  const known = nads();
  const p = pod("g", '[{"name":"static","namespace":"networks","ips":["10.1.1.5/24"],"mac":"CA:FE:C0:FF:EE:00"}]');
  const [, entry] = networkStatusFor(p, known, allocate(allocator, p, known)).entries;
  t.same(entry?.ips, ["10.1.1.5"]);
  t.equal(entry?.mac, "ca:fe:c0:ff:ee:00");
});

t.test("pod IPs handed over by the sandbox set-up win over an empty status", async (t) => {
  const p: PodLike = { metadata: { namespace: "default", name: "h", uid: "uid-h", annotations: { "k8s.v1.cni.cncf.io/networks": "plain" } } };
  const status = networkStatusFor(p, new Map(), new Map(), { podIPs: ["10.244.3.7", "fd00:10:244:3::7"] });
  t.same(status.entries[0]?.ips, ["10.244.3.7", "fd00:10:244:3::7"]);
});

t.test("MACs are stable, unicast and locally administered", async (t) => {
  const mac = macAddress("uid-x/net1");
  t.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const first = parseInt(mac.slice(0, 2), 16);
  t.equal(first & 0x03, 0x02, "locally administered bit set, multicast bit clear");
  t.equal(macAddress("uid-x/net1"), mac);
  t.not(macAddress("uid-x/net2"), mac);
});

t.test("requests Multus would refuse", async (t) => {
  t.throws(() => parseNetworksRequest('[{"name": "core"', "default"), NetworksRequestError);
  t.throws(() => parseNetworksRequest('[{"namespace": "x"}]', "default"), NetworksRequestError);
  t.throws(() => parseNetworksRequest("a/b/c", "default"), NetworksRequestError);
  t.throws(() => parseNetworksRequest("Core", "default"), NetworksRequestError);
  t.throws(() => parseNetworksRequest("core@a@b", "default"), NetworksRequestError);
  t.throws(() => parseNetworksRequest('[{"name":"core","interface":"a-very-long-interface-name"}]', "default"), NetworksRequestError);
  t.throws(() => parseNetworksRequest('[{"name":"core","ips":["10.0.0.300"]}]', "default"), NetworksRequestError);
  t.throws(() => parseNetworksRequest('[{"name":"core","mac":"zz:00:00:00:00:00"}]', "default"), NetworksRequestError);
  t.same(parseNetworksRequest("  ", "default"), [], "an empty request asks for nothing");
});
