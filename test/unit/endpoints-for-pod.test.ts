import { readFileSync } from "node:fs";
import path from "node:path";
import t from "tap";
import { annotations } from "../../common/api.ts";
import { endpointsForPod, maxAddressesPerPod } from "../../common/endpoints-for-pod.ts";
import { attachment, netService, pod, repoRoot } from "./objects.ts";

type PublicSample = {
  name: string;
  podNamespace: string;
  value: string;
  expect: Record<string, string[]>;
};

const samplesPath = path.join(repoRoot, "..", "shared", "fixtures", "network-status", "public-samples.json");
const samples = (JSON.parse(readFileSync(samplesPath, "utf8")) as { cases: PublicSample[] }).cases;

t.test("every public network-status sample publishes exactly the expected addresses", async (t) => {
  t.ok(samples.length > 0, "samples found");
  for (const sample of samples) {
    const samplePod = pod({
      namespace: sample.podNamespace,
      extraAnnotations: { [annotations.networkStatus]: sample.value },
    });
    for (const [netAttachDef, expected] of Object.entries(sample.expect)) {
      const result = endpointsForPod(samplePod, netService({ namespace: sample.podNamespace, netAttachDef }));
      t.same(result, { addresses: expected }, `${sample.name}: ${netAttachDef}`);
    }
  }
});

t.test("the same samples work from the legacy annotation", async (t) => {
  for (const sample of samples) {
    const samplePod = pod({
      namespace: sample.podNamespace,
      extraAnnotations: { [annotations.legacyNetworkStatus]: sample.value },
    });
    for (const [netAttachDef, expected] of Object.entries(sample.expect)) {
      const result = endpointsForPod(samplePod, netService({ namespace: sample.podNamespace, netAttachDef }));
      t.same(result.addresses, expected, `${sample.name}: ${netAttachDef}`);
    }
  }
});

const seedNetworks = `[
  {"name": "core", "namespace": "networks", "interface": "core"},
  {"name": "access", "namespace": "networks", "interface": "access"}
]`;

t.test("the original samples: NetServices core, access and empty over pods asking for networks/*", async (t) => {
  const seedPod = pod({
    networks: seedNetworks,
    networkStatus: [
      { name: "k8s-pod-network", interface: "eth0", ips: ["10.244.0.5"], default: true },
      attachment("networks/core", ["192.168.10.5"], { interface: "core" }),
      attachment("networks/access", ["192.168.20.5/24", "fd00:20::5/64"], { interface: "access" }),
    ],
  });
  t.same(endpointsForPod(seedPod, netService({ name: "corens", netAttachDef: "core" })).addresses, [
    "192.168.10.5",
  ]);
  t.same(endpointsForPod(seedPod, netService({ name: "accessns", netAttachDef: "access" })).addresses, [
    "192.168.20.5",
    "fd00:20::5",
  ]);
  t.same(endpointsForPod(seedPod, netService({ name: "emptyns", netAttachDef: "empty" })).addresses, []);
  t.same(
    endpointsForPod(seedPod, netService({ name: "web", netAttachDef: "blah", selector: { app: "nginx" } })),
    { addresses: [] },
  );
});

t.test("a pod attached twice to the network contributes every address once, sorted", async (t) => {
  const twice = pod({
    networkStatus: [
      attachment("default/core", ["10.0.0.9/24", "fd00::9"], { interface: "net1" }),
      attachment("default/core", ["10.0.0.10", "10.0.0.9", "fd00:0::9", "127.0.0.1", "fe80::1"], {
        interface: "net2",
      }),
    ],
  });
  t.same(endpointsForPod(twice, netService()).addresses, ["10.0.0.9", "10.0.0.10", "fd00::9"]);
});

t.test("a pod with more addresses than an endpoint may hold publishes the first 100 in address order", async (t) => {
  const ips = Array.from({ length: 150 }, (_, i) => `10.97.${Math.floor(i / 100)}.${(i % 100) + 1}`).reverse();
  const many = pod({ networkStatus: [attachment("default/core", ["fd00::1", ...ips])] });
  const endpoints = endpointsForPod(many, netService());
  t.equal(maxAddressesPerPod, 100);
  t.equal(endpoints.addresses.length, 100);
  t.equal(endpoints.addresses[0], "10.97.0.1");
  t.equal(endpoints.addresses[99], "10.97.0.100");
  t.equal(endpoints.leftOutOf, 151, "how many there were");
  const exactly = pod({ networkStatus: [attachment("default/core", ips.slice(0, 100))] });
  t.same(endpointsForPod(exactly, netService()).leftOutOf, undefined, "100 are all published");
});

t.test("spec.ipFamilies restricts the families published", async (t) => {
  const dual = pod({ networkStatus: [attachment("default/core", ["10.0.0.1", "fd00::1"])] });
  t.same(endpointsForPod(dual, netService({ ipFamilies: ["IPv6"] })).addresses, ["fd00::1"]);
  t.same(endpointsForPod(dual, netService({ ipFamilies: ["IPv4"] })).addresses, ["10.0.0.1"]);
  t.same(endpointsForPod(dual, netService({ ipFamilies: ["IPv6", "IPv4"] })).addresses, ["10.0.0.1", "fd00::1"]);
  t.same(endpointsForPod(dual, netService()).addresses, ["10.0.0.1", "fd00::1"]);
  t.same(endpointsForPod(dual, netService({ ipFamilies: [] })).addresses, ["10.0.0.1", "fd00::1"], "an empty list restricts nothing");
});

t.test("pods the NetService must not publish contribute nothing", async (t) => {
  const status = [attachment("default/core", ["10.0.0.1"])];
  const table: [why: string, options: Parameters<typeof pod>[0]][] = [
    ["another namespace", { namespace: "other", networkStatus: [attachment("other/core", ["10.0.0.1"])] }],
    ["not selected", { labels: { app: "other" }, networkStatus: status }],
    ["no labels", { labels: {}, networkStatus: status }],
    ["succeeded", { phase: "Succeeded", networkStatus: status }],
    ["failed", { phase: "Failed", networkStatus: status }],
    ["no network-status yet", {}],
  ];
  for (const [why, options] of table) {
    t.same(endpointsForPod(pod(options), netService()), { addresses: [] }, why);
  }
  const everyone = netService({ selector: {} });
  t.same(endpointsForPod(pod({ networkStatus: status }), everyone), { addresses: [] }, "empty selector");
});

t.test("a malformed annotation drops that pod only, with an error for the Event", async (t) => {
  const broken = pod({
    name: "broken",
    extraAnnotations: { [annotations.networkStatus]: '[{"name": "default/core", "ips": "10.0.0.1"}]' },
  });
  const healthy = pod({ name: "healthy", networkStatus: [attachment("default/core", ["10.0.0.2"])] });
  const brokenResult = endpointsForPod(broken, netService());
  t.same(brokenResult.addresses, []);
  t.match(brokenResult.error, /network-status: entry 0 field ips/);
  t.same(endpointsForPod(healthy, netService()), { addresses: ["10.0.0.2"] });
  t.same(
    endpointsForPod(broken, netService({ selector: { app: "other" } })),
    { addresses: [] },
    "no error for a NetService that does not select the pod",
  );
});

t.test("a malformed networks request is reported but the pod's namespace still matches", async (t) => {
  const odd = pod({ networks: "a/b/c", networkStatus: [attachment("default/core", ["10.0.0.3"])] });
  const result = endpointsForPod(odd, netService());
  t.same(result.addresses, ["10.0.0.3"]);
  t.match(result.error, /^networks request/);
});

t.test("with both annotations malformed, the network-status error is the one reported: it is why the pod has no endpoints", async (t) => {
  const both = pod({ networks: "a/b/c", extraAnnotations: { [annotations.networkStatus]: "{{{" } });
  t.same(endpointsForPod(both, netService()), { addresses: [], error: `${annotations.networkStatus}: not valid JSON` });
});

t.test("a pod without any annotation contributes nothing and no error", async (t) => {
  const bare = pod({ name: "bare" });
  delete bare.metadata?.annotations;
  t.same(endpointsForPod(bare, netService()), { addresses: [] });
});

t.test("a pod of another namespace with a malformed annotation gets no error from this NetService", async (t) => {
  const elsewhere = pod({ namespace: "other", extraAnnotations: { [annotations.networkStatus]: "{{{" } });
  t.same(endpointsForPod(elsewhere, netService()), { addresses: [] });
  t.notOk("error" in endpointsForPod(elsewhere, netService()), "no Event for a pod the NetService cannot select");
});
