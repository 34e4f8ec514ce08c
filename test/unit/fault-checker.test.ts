// The fault checker's own rules (test/faults/support): what a NetService's
// status and Services must say, derived from docs/api.md, and how a check
// counts what it compared so that a scenario comparing nothing fails.
import t from "tap";
import { comparedOf, shortfalls, type Minimum } from "../faults/support/checker.ts";
import { addressKey, expectedEndpoints, expectedServices, expectedStatus, type NetServiceJson, type PodJson } from "../faults/support/truth.ts";

const netService = (name: string, spec: Partial<NetServiceJson["spec"]> = {}): NetServiceJson => ({
  metadata: { namespace: "ns", name, uid: `uid-${name}`, generation: 1 },
  spec: { netAttachDef: "networks/core", selector: { app: "a" }, ...spec },
});

const pod = (name: string, node: string, ips: string[], extra: { ready?: boolean; hostname?: string; subdomain?: string } = {}): PodJson => ({
  metadata: {
    namespace: "ns",
    name,
    uid: `uid-${name}`,
    labels: { app: "a" },
    annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify([{ name: "networks/core", ips }]) },
  },
  spec: { nodeName: node, ...(extra.hostname ? { hostname: extra.hostname } : {}), ...(extra.subdomain ? { subdomain: extra.subdomain } : {}) },
  status: { phase: "Running", conditions: [{ type: "Ready", status: extra.ready === false ? "False" : "True" }] },
});

t.test("status: endpoints are pods, nodes reporting are nodes with endpoints, Ready and NodesHealthy follow", async (t) => {
  const pods = [pod("p1", "n1", ["10.0.0.1", "fd00::1"]), pod("p2", "n1", ["10.0.0.2"], { ready: false }), pod("p3", "n2", ["10.0.0.3"]), pod("p4", "n3", [])];
  const truth = expectedEndpoints([netService("s")], pods, new Set(["n1", "n2", "n3"]), new Set(["n2"]));
  const status = expectedStatus(truth.get("ns/s")!);
  t.same(status, {
    readyEndpoints: 1,
    notReadyEndpoints: 2,
    nodesReporting: 2,
    ready: { status: "True", reason: "EndpointsPublished" },
    nodesHealthy: { status: "False", reason: "NodesUnhealthy" },
  }, "p1 once for two addresses; p3 not ready on an unserved node; n3 has no endpoint");
  const none = expectedStatus({ addresses: new Map() });
  t.same([none.ready, none.nodesHealthy, none.nodesReporting], [{ status: "False", reason: "NoMatchingPods" }, { status: "True", reason: "AllNodesHealthy" }, 0]);
});

t.test("hostname: published only by the NetService the pod's subdomain names, and only when the pod sets one", async (t) => {
  const pods = [pod("named", "n1", ["10.0.0.1"], { hostname: "h1", subdomain: "s" }), pod("other", "n1", ["10.0.0.2"], { hostname: "h2", subdomain: "t" }), pod("bare", "n1", ["10.0.0.3"], { subdomain: "s" })];
  const truth = expectedEndpoints([netService("s"), netService("t")], pods, new Set(["n1"]));
  const hostnames = (key: string) => [...truth.get(key)!.addresses.values()].map((a) => `${a.pod}=${a.hostname ?? "-"}`).sort();
  t.same(hostnames("ns/s"), ["bare=-", "named=h1", "other=-"]);
  t.same(hostnames("ns/t"), ["bare=-", "named=-", "other=h2"]);
  t.equal(truth.get("ns/s")!.addresses.get(addressKey("10.0.0.1", "uid-named"))?.hostname, "h1");
});

t.test("Services: ports with TCP by default and appProtocol, template name, families", async (t) => {
  t.same(expectedServices(netService("s")), {
    ports: [],
    templateName: "s-template",
    publishNotReadyAddresses: false,
    ipFamilyPolicy: "RequireDualStack",
    ipFamilies: ["IPv4", "IPv6"],
  }, "omitted ipFamilies: every family, as the API server defaults a selectorless headless Service");
  const restricted = expectedServices(netService("s", {
    ports: [{ name: "http", port: 80, appProtocol: "http" }, { name: "dns", port: 53, protocol: "UDP" }],
    ipFamilies: ["IPv6"],
    templateServiceName: "pods",
    publishNotReadyAddresses: true,
  }));
  t.same(restricted.ports, [{ name: "http", port: 80, protocol: "TCP", appProtocol: "http" }, { name: "dns", port: 53, protocol: "UDP" }]);
  t.same([restricted.templateName, restricted.publishNotReadyAddresses, restricted.ipFamilyPolicy, restricted.ipFamilies], ["pods", true, "SingleStack", ["IPv6"]]);
  t.same(expectedServices(netService("s", { ipFamilies: ["IPv6", "IPv4"] })).ipFamilies, ["IPv4", "IPv6"], "both, in any order, are dual-stack");
});

t.test("what a check compared, and where it falls short of a minimum", async (t) => {
  const pods = [pod("p1", "n1", ["10.0.0.1", "fd00::1"], { hostname: "h", subdomain: "v4" }), pod("p2", "n1", ["10.0.0.2"])];
  const truth = expectedEndpoints([netService("v4"), netService("v6", { ipFamilies: ["IPv6"] }), netService("none", { selector: { app: "b" } })], pods, new Set(["n1"]));
  const compared = comparedOf(truth.values());
  t.same(compared, {
    netServicesWithEndpoints: 2,
    addresses: { IPv4: 2, IPv6: 2 },
    hostnames: 2,
    byNetService: { "ns/v4": { IPv4: 2, IPv6: 1 }, "ns/v6": { IPv4: 0, IPv6: 1 }, "ns/none": { IPv4: 0, IPv6: 0 } },
  });
  const minimum: Minimum = { netServicesWithEndpoints: 3, addresses: { IPv4: 1, IPv6: 3 }, hostnames: 1, byNetService: { "ns/v6": { IPv6: 1 }, "ns/none": { IPv4: 1 } } };
  t.same(shortfalls(compared, minimum), [
    "NetServices with endpoints: 2, want at least 3",
    "IPv6 addresses: 2, want at least 3",
    "ns/none IPv4 addresses: 0, want at least 1",
  ]);
  t.same(shortfalls(comparedOf([]), { ...minimum, netServicesWithEndpoints: 0, addresses: { IPv4: 0, IPv6: 0 }, hostnames: 0, byNetService: { "ns/v6": { IPv6: 1 } } }), [
    "ns/v6 IPv6 addresses: 0, want at least 1",
  ], "a NetService the check never saw counts as none");
});
