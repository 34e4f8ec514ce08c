// Hostile input against the pure data flow, on generated cases: the
// network-status parser, the pod -> report -> merge pipeline and the merge of
// reports nobody vouches for. The oracle is the fault checker's own truth
// (support/truth.ts), written without the project's parser, matcher or address
// code, so each side checks the other.
//
// NETSERVICE_FAULT_CASES sets the total number of generated cases (default
// 100,000, what CI runs); e.g. NETSERVICE_FAULT_CASES=2000000 for a long run.
import t from "tap";
import fc from "fast-check";
import type { V1Pod } from "@kubernetes/client-node";
import { annotations, netServiceSchema, reportSpecSchema, type NetService, type ReportSpec } from "../../common/api.ts";
import { healthyNodes, mergeReports } from "../../common/merge.ts";
import { parseNetworkStatus } from "../../common/network-status.ts";
import { buildNodeReport } from "../../common/node-report.ts";
import { addressKey, expectedEndpoints, networkStatusOf, publishable, type NetServiceJson, type PodJson } from "./support/truth.ts";

const totalCases = Number(process.env.NETSERVICE_FAULT_CASES ?? 100_000);
const share = (fraction: number) => ({ numRuns: Math.max(1, Math.round(totalCases * fraction)) });

// ---- generators -------------------------------------------------------------

const addressText = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV6().map((a) => a.toUpperCase()),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 40 })).map(([a, p]) => `${a}/${p}`),
  fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 140 })).map(([a, p]) => `${a}/${p}`),
  fc.ipV4().map((a) => `::ffff:${a}`),
  fc.constantFrom(
    "127.0.0.1", "169.254.0.9", "224.0.0.251", "239.255.255.250", "0.0.0.0", "::", "::1", "fe80::1", "fe80::1%net1",
    "ff02::fb", "10.0.0.01", "1.2.3", "1.2.3.4.5", "10.1.1.1/", "10.1.1.1//8", " 10.1.1.2 ", "2001:db8::1::2", "",
  ),
  fc.string({ maxLength: 24 }),
);

const entryName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("networks/core", "default/core", "core", "networks/access", "other/core", "corex", "default/xcore", "") },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

/** A network-status entry, usually well formed, sometimes with a wrong type somewhere. */
const entry = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        name: entryName,
        interface: fc.oneof(fc.constantFrom("net1", "net2", "eth0"), fc.constant(null)),
        ips: fc.oneof({ weight: 5, arbitrary: fc.array(addressText, { maxLength: 5 }) }, { weight: 1, arbitrary: fc.constant(null) }),
        default: fc.oneof(fc.boolean(), fc.constant(null)),
        mac: fc.constant("02:00:00:00:00:01"),
      },
      { requiredKeys: ["name"] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ name: fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string())), ips: fc.array(addressText) }) },
  { weight: 1, arbitrary: fc.record({ name: entryName, ips: fc.oneof(addressText, fc.array(fc.oneof(fc.integer(), fc.constant(null)), { minLength: 1 })) }) },
  { weight: 1, arbitrary: fc.record({ name: entryName, ips: fc.array(addressText), default: fc.oneof(fc.string(), fc.integer()) }) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.string(), fc.integer(), fc.array(fc.string())) },
);

/** What the annotation may hold: Multus' JSON, JSON of another shape, or not JSON at all. */
const annotationValue = fc.oneof(
  { weight: 6, arbitrary: fc.array(entry, { maxLength: 6 }).map((list) => JSON.stringify(list)) },
  { weight: 1, arbitrary: fc.array(entry, { minLength: 1, maxLength: 4 }).chain((list) => {
    const text = JSON.stringify(list);
    return fc.integer({ min: 0, max: text.length - 1 }).map((cut) => text.slice(0, cut));
  }) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom("", "   ", "null", "[]", "{}", "[[]]", "[{}]") },
);

const networksRequest = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    JSON.stringify([{ name: "core", namespace: "networks", interface: "core" }]),
    JSON.stringify([{ name: "core", namespace: "networks" }, { name: "access", namespace: "networks" }]),
    JSON.stringify([{ name: "core" }]),
    JSON.stringify([{ name: "access", namespace: "networks" }]),
    "networks/core@core",
    "networks/core, networks/access",
    "core",
    "other/core@x",
    "[{not json",
    "",
  ),
);

/** What Multus writes, mostly: valid entries for the networks in play, now and then an odd address or a broken value. */
const multusLikeStatus = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.array(
      fc.record({
        name: fc.constantFrom("networks/core", "networks/core", "default/core", "core", "networks/access", "other/core", "kindnet"),
        interface: fc.constantFrom("net1", "net2", "eth0"),
        ips: fc.array(fc.oneof({ weight: 6, arbitrary: fc.oneof(fc.ipV4(), fc.ipV6()) }, { weight: 1, arbitrary: addressText }), { maxLength: 3 }),
        default: fc.boolean(),
      }),
      { minLength: 1, maxLength: 4 },
    ).map((list) => JSON.stringify(list)),
  },
  { weight: 1, arbitrary: annotationValue },
);

type GeneratedPod = { namespace: string; labels: Record<string, string>; status: string | undefined; legacy: string | undefined; request: string | undefined; ready: boolean; deleting: boolean; phase: string; node: number };

const generatedPod = fc.record({
  namespace: fc.constantFrom("default", "default", "default", "other"),
  labels: fc.constantFrom<Record<string, string>>({ app: "utils" }, { app: "utils" }, { app: "utils", tier: "a" }, { app: "utils", tier: "b" }, { app: "other" }, {}),
  status: fc.option(multusLikeStatus, { freq: 8, nil: undefined }),
  legacy: fc.option(multusLikeStatus, { freq: 4, nil: undefined }),
  request: networksRequest,
  ready: fc.boolean(),
  deleting: fc.boolean(),
  phase: fc.constantFrom("Running", "Running", "Running", "Running", "Pending", "Succeeded", "Failed"),
  node: fc.integer({ min: 0, max: 3 }),
});

const generatedNetService = fc.record({
  netAttachDef: fc.constantFrom("core", "core", "networks/core", "access", "default/core", "networks/access", "x/core"),
  selector: fc.constantFrom<Record<string, string>>({ app: "utils" }, { app: "utils" }, { app: "utils", tier: "a" }, { tier: "b" }, {}),
  ipFamilies: fc.option(fc.subarray(["IPv4", "IPv6"] as const, { minLength: 1 }), { nil: undefined }),
  publishNotReadyAddresses: fc.boolean(),
});

function toPod(generated: GeneratedPod, index: number): PodJson & V1Pod {
  const podAnnotations: Record<string, string> = {};
  if (generated.status !== undefined) podAnnotations[annotations.networkStatus] = generated.status;
  if (generated.legacy !== undefined) podAnnotations[annotations.legacyNetworkStatus] = generated.legacy;
  if (generated.request !== undefined) podAnnotations[annotations.networksRequest] = generated.request;
  return {
    metadata: {
      namespace: generated.namespace,
      name: `pod-${index}`,
      uid: `uid-${index}`,
      labels: generated.labels,
      annotations: podAnnotations,
      ...(generated.deleting ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}),
    },
    spec: { nodeName: `node-${generated.node}`, containers: [] },
    status: { phase: generated.phase, conditions: [{ type: "Ready", status: generated.ready ? "True" : "False" }] },
  } as PodJson & V1Pod;
}

type GeneratedNetService = { netAttachDef: string; selector: Record<string, string>; ipFamilies: readonly ("IPv4" | "IPv6")[] | undefined; publishNotReadyAddresses: boolean };

function toNetService(generated: GeneratedNetService, index: number): { parsed: NetService; json: NetServiceJson } {
  const json: NetServiceJson = {
    metadata: { namespace: "default", name: `ns-${index}`, uid: `ns-uid-${index}`, generation: 1 },
    spec: {
      netAttachDef: generated.netAttachDef,
      selector: generated.selector,
      publishNotReadyAddresses: generated.publishNotReadyAddresses,
      ...(generated.ipFamilies ? { ipFamilies: [...generated.ipFamilies] } : {}),
    },
  };
  return { parsed: netServiceSchema.parse(json), json };
}

// ---- properties -------------------------------------------------------------

t.test("the parser accepts exactly what the independent reading accepts, and reads the same attachments", async (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(annotationValue, fc.option(annotationValue, { nil: undefined }), (value, legacy) => {
      const podAnnotations: Record<string, string> = { [annotations.networkStatus]: value };
      if (legacy !== undefined) podAnnotations[annotations.legacyNetworkStatus] = legacy;
      const parsed = parseNetworkStatus(podAnnotations);
      const oracle = networkStatusOf({ metadata: { namespace: "default", name: "p", uid: "u", annotations: podAnnotations } });
      if (parsed.ok !== (oracle !== undefined)) throw new Error(`parser ok=${parsed.ok}, oracle ${oracle ? "accepts" : "refuses"}: ${value.slice(0, 200)}`);
      if (parsed.ok && oracle) {
        accepted++;
        const mine = parsed.attachments.map((a) => ({ name: a.name, ips: a.ips }));
        if (JSON.stringify(mine) !== JSON.stringify(oracle)) throw new Error(`attachments differ: ${JSON.stringify(mine)} vs ${JSON.stringify(oracle)}`);
      }
    }),
    share(0.35),
  );
  t.ok(accepted > share(0.35).numRuns / 4, `${share(0.35).numRuns} annotations, ${accepted} of them well formed`);
});

t.test("pods -> node reports -> merge publishes exactly what the pods say, with the right readiness", async (t) => {
  let published = 0;
  fc.assert(
    fc.property(fc.array(generatedPod, { maxLength: 8 }), fc.array(generatedNetService, { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 3 }), (generatedPods, generatedNetServices, deadNode) => {
      const pods = generatedPods.map(toPod);
      const netServices = generatedNetServices.map(toNetService);
      const liveNodes = new Set(["node-0", "node-1", "node-2", "node-3"].filter((node) => node !== `node-${deadNode}`));
      const reports = ["node-0", "node-1", "node-2", "node-3"].map((nodeName) => ({
        nodeName,
        spec: buildNodeReport(nodeName, pods.filter((pod) => pod.spec?.nodeName === nodeName), netServices.map((n) => n.parsed)),
      }));
      const truth = expectedEndpoints(netServices.map((n) => n.json), pods, liveNodes);
      for (const { parsed, json } of netServices) {
        const merged = mergeReports(parsed, reports, healthyNodes(liveNodes));
        const got = new Map<string, string>();
        for (const endpoint of merged.endpoints) {
          for (const ip of endpoint.addresses) {
            got.set(addressKey(ip, endpoint.pod.uid), `${endpoint.nodeName} ready=${endpoint.ready} serving=${endpoint.serving} terminating=${endpoint.terminating}`);
          }
        }
        const want = new Map<string, string>();
        for (const [key, a] of truth.get(`default/${json.metadata.name}`)?.addresses ?? []) {
          want.set(key, `${a.node} ready=${a.ready} serving=${a.serving} terminating=${a.terminating}`);
        }
        if (want.size > 0) published++;
        const gotText = JSON.stringify([...got].sort());
        const wantText = JSON.stringify([...want].sort());
        if (gotText !== wantText) throw new Error(`NetService ${JSON.stringify(json.spec)}:\n  published ${gotText}\n  truth     ${wantText}`);
      }
    }),
    share(0.3),
  );
  t.ok(published > share(0.3).numRuns / 10, `${share(0.3).numRuns} clusters, ${published} NetServices with addresses to publish`);
});

/** A report as the API server would let anyone store it: schema-valid, content arbitrary. */
const hostileReport = fc.record({
  nodeName: fc.constantFrom("node-0", "node-1", "node-2", "gone"),
  triggerTime: fc.option(fc.oneof(fc.date({ min: new Date("2026-01-01"), max: new Date("2027-01-01"), noInvalidDate: true }).map((d) => d.toISOString()), fc.string({ maxLength: 10 })), { nil: undefined }),
  pods: fc.array(fc.record({
    namespace: fc.constantFrom("default", "other"),
    name: fc.constantFrom("a", "b", "c", "d"),
    uid: fc.constantFrom("uid-a", "uid-b", "uid-c", "uid-d", "uid-x"),
    serving: fc.boolean(),
    terminating: fc.boolean(),
  }), { maxLength: 5 }),
  netServices: fc.array(fc.record({
    namespace: fc.constantFrom("default", "other"),
    name: fc.constantFrom("corens", "other"),
    uid: fc.constantFrom("uid-corens", "uid-stale"),
    generation: fc.integer({ min: 0, max: 3 }),
    endpoints: fc.array(fc.record({ pod: fc.integer({ min: 0, max: 8 }), addresses: fc.array(addressText, { minLength: 1, maxLength: 4 }) }), { maxLength: 5 }),
  }), { maxLength: 3 }),
});

t.test("merging reports nobody vouches for publishes only valid addresses of live nodes, each pod once", async (t) => {
  const corens = netServiceSchema.parse({
    metadata: { namespace: "default", name: "corens", uid: "uid-corens", generation: 2 },
    spec: { netAttachDef: "core", selector: { app: "utils" } },
  });
  const live = new Set(["node-0", "node-1", "node-2"]);
  fc.assert(
    fc.property(fc.array(hostileReport, { maxLength: 4 }), (raw) => {
      const reports = raw.map((spec) => ({ nodeName: spec.nodeName, spec: reportSpecSchema.parse(spec) as ReportSpec }));
      const merged = mergeReports(corens, reports, healthyNodes(live));
      const seen = new Set<string>();
      for (const endpoint of merged.endpoints) {
        if (seen.has(endpoint.pod.name)) throw new Error(`pod ${endpoint.pod.name} published twice`);
        seen.add(endpoint.pod.name);
        if (!live.has(endpoint.nodeName)) throw new Error(`endpoint on ${endpoint.nodeName}, which is not live`);
        if (endpoint.pod.namespace !== "default") throw new Error(`a pod of namespace ${endpoint.pod.namespace}`);
        for (const ip of endpoint.addresses) {
          if (publishable(ip)?.ip !== ip) throw new Error(`published ${JSON.stringify(ip)}, which is not a canonical publishable address`);
          const claimed = reports.some((r) => r.nodeName === endpoint.nodeName && r.spec.netServices.some((e) =>
            e.uid === "uid-corens" && e.namespace === "default" &&
            e.endpoints.some((ep) => r.spec.pods[ep.pod]?.name === endpoint.pod.name && ep.addresses.some((text) => publishable(text)?.ip === ip))));
          if (!claimed) throw new Error(`${ip} of ${endpoint.pod.name} is in no live report entry of this NetService`);
        }
      }
      if (merged.readyEndpoints + merged.notReadyEndpoints !== merged.endpoints.length) throw new Error("counts do not add up");
      // Isolation: what one pod's entries say changes nothing about any other pod.
      const victim = merged.endpoints[0]?.pod.name;
      if (victim !== undefined) {
        const without = reports.map((r) => ({
          ...r,
          spec: { ...r.spec, netServices: r.spec.netServices.map((e) => ({ ...e, endpoints: e.endpoints.filter((ep) => r.spec.pods[ep.pod]?.name !== victim) })) },
        }));
        const others = (m: ReturnType<typeof mergeReports>) => JSON.stringify(m.endpoints.filter((e) => e.pod.name !== victim));
        if (others(mergeReports(corens, without, healthyNodes(live))) !== others(merged)) throw new Error(`removing ${victim}'s entries changed other pods`);
      }
    }),
    share(0.2),
  );
  t.pass(`${share(0.2).numRuns} sets of reports`);
});

t.test("a hostile pod changes no other pod's entries in its node's report", async (t) => {
  fc.assert(
    fc.property(fc.array(generatedPod, { maxLength: 6 }), generatedPod, fc.array(generatedNetService, { minLength: 1, maxLength: 3 }), (generatedPods, hostile, generatedNetServices) => {
      const pods = generatedPods.map((p, i) => toPod({ ...p, node: 0 }, i));
      const intruder = toPod({ ...hostile, node: 0 }, 99);
      const netServices = generatedNetServices.map(toNetService).map((n) => n.parsed);
      // Per NetService, the other pods' endpoints; a NetService without any has no entry (the intruder may add one).
      const entriesOf = (spec: ReportSpec) =>
        JSON.stringify(
          spec.netServices
            .map((e) => ({
              netService: `${e.namespace}/${e.name}/${e.uid}/${e.generation}`,
              endpoints: e.endpoints.map((ep) => ({ pod: spec.pods[ep.pod], addresses: ep.addresses })).filter((ep) => ep.pod?.name !== "pod-99"),
            }))
            .filter((e) => e.endpoints.length > 0),
        );
      const before = buildNodeReport("node-0", pods, netServices);
      const after = buildNodeReport("node-0", [...pods, intruder], netServices);
      if (entriesOf(before) !== entriesOf(after)) throw new Error("adding one pod changed another pod's entries");
    }),
    share(0.15),
  );
  t.pass(`${share(0.15).numRuns} nodes`);
});

t.test("extreme annotations: 1 MiB, 10,000 entries, 50,000-deep nesting", async (t) => {
  const withStatus = (value: string) => ({ metadata: { namespace: "default", name: "big", uid: "u", annotations: { [annotations.networkStatus]: value } } });
  const padded = JSON.stringify([
    { name: "networks/core", interface: "net1", ips: ["10.1.0.1", "fd00::1"] },
    ...Array.from({ length: 900 }, (_, i) => ({ name: `pad-${i}`, mac: "0".repeat(1200) })),
  ]);
  t.ok(padded.length > 1024 * 1024, `a ${Math.round(padded.length / 1024)} KiB annotation`);
  const big = parseNetworkStatus(withStatus(padded).metadata.annotations);
  t.ok(big.ok && big.attachments.length === 901 && big.attachments[0]?.ips.length === 2, "is read whole");
  const tenThousand = JSON.stringify(Array.from({ length: 10_000 }, (_, i) => ({ name: i % 1000 === 0 ? "networks/core" : `n${i}`, ips: [`10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`] })));
  const many = parseNetworkStatus(withStatus(tenThousand).metadata.annotations);
  t.ok(many.ok && many.attachments.length === 10_000, "10,000 entries are read");
  const badAtTheEnd = JSON.stringify([...Array.from({ length: 9_999 }, () => ({ name: "x" })), { name: 1 }]);
  const refused = parseNetworkStatus(withStatus(badAtTheEnd).metadata.annotations);
  t.ok(!refused.ok && refused.error.length < 300, `one bad entry of 10,000 refuses the annotation with a short message: ${refused.ok ? "" : refused.error}`);
  const deep = parseNetworkStatus(withStatus(`${"[".repeat(50_000)}${"]".repeat(50_000)}`).metadata.annotations);
  t.notOk(deep.ok, "50,000-deep nesting is refused, not a crash");
  t.equal(networkStatusOf(withStatus(padded))?.length, 901, "the oracle reads the same");
});
