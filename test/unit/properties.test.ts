// Properties of the whole pure data flow, checked on generated inputs.
import { BlockList } from "node:net";
import t from "tap";
import fc from "fast-check";
import type { V1Pod } from "@kubernetes/client-node";
import { annotations, reportSpecSchema, type NetService } from "../../common/api.ts";
import { addressFamily, canonicalAddress } from "../../common/addresses.ts";
import { desiredEndpoints } from "../../common/desired-endpoints.ts";
import { desiredEndpointSlices, maxEndpointsPerSlice } from "../../common/desired-slices.ts";
import { endpointsForPod } from "../../common/endpoints-for-pod.ts";
import { healthyNodes, mergeReports, type MergedEndpoint, type MergedNetService } from "../../common/merge.ts";
import { parseNetworkStatus } from "../../common/network-status.ts";
import { parseNetworksRequest } from "../../common/networks.ts";
import { buildNodeReport } from "../../common/node-report.ts";
import { podReadiness } from "../../common/readiness.ts";
import { netService, pod, propertyRuns } from "./objects.ts";

const runs = { numRuns: propertyRuns };

// An oracle independent of our parser for the ranges that must never be published.
const unpublishable = new BlockList();
unpublishable.addSubnet("0.0.0.0", 32, "ipv4");
unpublishable.addSubnet("127.0.0.0", 8, "ipv4");
unpublishable.addSubnet("169.254.0.0", 16, "ipv4");
unpublishable.addSubnet("224.0.0.0", 4, "ipv4");
unpublishable.addSubnet("::", 128, "ipv6");
unpublishable.addSubnet("::1", 128, "ipv6");
unpublishable.addSubnet("fe80::", 10, "ipv6");
unpublishable.addSubnet("ff00::", 8, "ipv6");

/** What a WHATWG URL parser, which serialises IPv6 per RFC 5952, makes of a canonical address. */
function urlCanonical(address: string): string {
  return addressFamily(address) === "IPv6" ? new URL(`http://[${address}]`).hostname.slice(1, -1) : address;
}

function assertPublishable(address: string): void {
  const family = addressFamily(address);
  if (canonicalAddress(address)?.address !== address) throw new Error(`${address} is not canonical`);
  if (urlCanonical(address) !== address) throw new Error(`${address} is not RFC 5952 text`);
  if (family === "IPv4" && !/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(address)) {
    throw new Error(`${address} is not dotted decimal`);
  }
  if (unpublishable.check(address, family === "IPv4" ? "ipv4" : "ipv6")) {
    throw new Error(`${address} must not be published`);
  }
}

const specialAddresses = [
  "127.0.0.1",
  "127.1.2.3/8",
  "::1",
  "fe80::1",
  "fe80::1%net1",
  "febf:ffff::1",
  "169.254.3.4",
  "224.0.0.251",
  "239.1.1.1",
  "ff02::fb",
  "0.0.0.0",
  "::",
  "::ffff:127.0.0.1",
  "::ffff:10.0.0.1",
  "::ffff:169.254.0.1",
  "10.0.0.01",
  "2001:DB8::1",
  "2001:db8:0:0:0:0:0:1/64",
];

const addressText = fc
  .tuple(
    fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.ipV4Extended(),
      fc.constantFrom(...specialAddresses),
      fc.ipV6().map((address) => address.toUpperCase()),
      fc.string({ maxLength: 20 }),
    ),
    fc.option(fc.integer({ min: 0, max: 140 }), { nil: undefined }),
  )
  .map(([address, prefix]) => (prefix === undefined ? address : `${address}/${prefix}`));

t.test("the annotation parsers never throw, whatever the input", async (t) => {
  const annotationValue = fc.oneof(
    fc.string(),
    fc.json(),
    fc.jsonValue().map((value) => JSON.stringify([value])),
    fc
      .array(
        fc.record(
          {
            name: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
            interface: fc.oneof(fc.string(), fc.integer()),
            ips: fc.oneof(fc.array(addressText), fc.array(fc.jsonValue()), fc.string()),
            default: fc.oneof(fc.boolean(), fc.string()),
            dns: fc.jsonValue(),
          },
          { requiredKeys: [] },
        ),
      )
      .map((entries) => JSON.stringify(entries)),
  );
  fc.assert(
    fc.property(annotationValue, fc.boolean(), (value, legacy) => {
      const key = legacy ? annotations.legacyNetworkStatus : annotations.networkStatus;
      const result = parseNetworkStatus({ [key]: value });
      if (!result.ok && result.error.length > 300) throw new Error("error message too long");
      const request = parseNetworksRequest(value, "default");
      if (request.error !== undefined && request.networks.length > 0) throw new Error("partial request");
    }),
    runs,
  );
  t.pass("no input made a parser throw");
});

t.test("canonicalAddress is idempotent and agrees with an independent RFC 5952 serialiser", async (t) => {
  fc.assert(
    fc.property(addressText, (text) => {
      const canonical = canonicalAddress(text);
      if (canonical === undefined) return;
      const again = canonicalAddress(canonical.address);
      if (again?.address !== canonical.address || again.family !== canonical.family) {
        throw new Error(`${text} -> ${canonical.address} -> ${again?.address}`);
      }
      if (addressFamily(canonical.address) !== canonical.family) throw new Error("family mismatch");
      assertPublishable(canonical.address);
    }),
    runs,
  );
  fc.assert(
    fc.property(fc.ipV6(), (text) => {
      const canonical = canonicalAddress(text);
      if (canonical?.family === "IPv6" && urlCanonical(text) !== canonical.address) {
        throw new Error(`${text}: ${canonical.address} vs ${urlCanonical(text)}`);
      }
    }),
    runs,
  );
  t.pass("idempotent and canonical");
});

const podNames = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
const nodeNames = ["n1", "n2", "n3"];

const generatedPod = fc.record({
  name: fc.constantFrom(...podNames),
  node: fc.constantFrom(...nodeNames),
  namespace: fc.constantFrom("default", "default", "other"),
  app: fc.constantFrom("a", "b"),
  networks: fc.constantFrom(undefined, "networks/core", "core, networks/access@net2", "[{]"),
  attachments: fc.array(
    fc.record({
      name: fc.constantFrom("default/core", "core", "networks/core", "networks/access", "default/access", ""),
      ips: fc.array(addressText, { maxLength: 4 }),
      default: fc.boolean(),
    }),
    { maxLength: 4 },
  ),
  malformed: fc.constantFrom(false, false, false, true),
  ready: fc.boolean(),
  deleting: fc.boolean(),
  phase: fc.constantFrom("Running", "Running", "Pending", "Succeeded", "Failed"),
  hostname: fc.constantFrom(undefined, "host"),
});

const generatedNetService = fc.record({
  name: fc.constantFrom("s1", "s2", "s3", "s4"),
  netAttachDef: fc.constantFrom("core", "access", "networks/core", "default/core", "networks/access"),
  app: fc.constantFrom("a", "b"),
  ipFamilies: fc.constantFrom(undefined, ["IPv4"], ["IPv6"], ["IPv4", "IPv6"]),
  publishNotReadyAddresses: fc.boolean(),
});

type GeneratedPod = typeof generatedPod extends fc.Arbitrary<infer T> ? T : never;

function toPod(generated: GeneratedPod): V1Pod {
  const built = pod({
    namespace: generated.namespace,
    name: generated.name,
    labels: { app: generated.app },
    ready: generated.ready,
    deleting: generated.deleting,
    phase: generated.phase,
    ...(generated.hostname ? { hostname: generated.hostname } : {}),
    ...(generated.networks !== undefined ? { networks: generated.networks } : {}),
    networkStatus: generated.attachments.map((each) => ({
      ...each,
      ips: generated.malformed ? [1] : each.ips,
    })),
  });
  return { ...built, spec: { ...built.spec, containers: [], nodeName: generated.node } };
}

t.test("node reports merged back give exactly the (pod, address) pairs of every NetService", async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(generatedPod, { selector: (each) => each.name, maxLength: podNames.length }),
      fc.uniqueArray(generatedNetService, { selector: (each) => each.name, maxLength: 4 }),
      (generatedPods, generatedNetServices) => {
        const pods = generatedPods.map(toPod);
        const netServices = generatedNetServices.map((each) =>
          netService({ ...each, selector: { app: each.app } }),
        );
        const reports = nodeNames.map((nodeName) => {
          const onNode = pods.filter((each) => each.spec?.nodeName === nodeName);
          const spec = buildNodeReport(nodeName, onNode, netServices);
          // Through JSON and the schema, as the aggregator reads it back from the API.
          return { nodeName, spec: reportSpecSchema.parse(JSON.parse(JSON.stringify(spec))) };
        });
        for (const each of netServices) {
          const expected = pods.flatMap((member) =>
            endpointsForPod(member, each).addresses.map((address) => pairOf(member, address, each)),
          );
          const merged = mergeReports(each, reports, healthyNodes(nodeNames));
          const actual = merged.endpoints.flatMap((endpoint) =>
            endpoint.addresses.map((address) => `${endpoint.pod.name} ${address} ${readinessOf(endpoint)}`),
          );
          if (JSON.stringify([...expected].sort()) !== JSON.stringify([...actual].sort())) {
            throw new Error(`${each.metadata.name}: expected ${expected.join(",")} got ${actual.join(",")}`);
          }
          for (const address of actual.map((pair) => pair.split(" ")[1] ?? "")) assertPublishable(address);
        }
      },
    ),
    runs,
  );
  t.pass("round trip preserves every pair");
});

function pairOf(member: V1Pod, address: string, owner: NetService): string {
  const { serving, terminating } = podReadiness(member);
  const ready = owner.spec.publishNotReadyAddresses || (serving && !terminating);
  return `${member.metadata?.name} ${address} ${serving}/${terminating}/${ready}`;
}

function readinessOf(endpoint: MergedEndpoint): string {
  return `${endpoint.serving}/${endpoint.terminating}/${endpoint.ready}`;
}

const canonicalPool = fc
  .oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("10.0.0.1", "10.0.0.2", "fd00::1"))
  .map((text) => canonicalAddress(text)?.address)
  .filter((address): address is string => address !== undefined);

function viewOf(candidates: readonly MergedEndpoint[]): MergedNetService {
  const byUid = new Map(candidates.map((endpoint) => [endpoint.pod.uid, endpoint]));
  const endpoints = [...byUid.values()];
  const ready = endpoints.filter((each) => each.ready).length;
  return {
    endpoints,
    readyEndpoints: ready,
    notReadyEndpoints: endpoints.length - ready,
    nodesReporting: 7,
    agents: { reporting: 7, liveNodes: 7 },
    staleNodes: [],
    unservedNodes: [],
  };
}

const mergedView: fc.Arbitrary<MergedNetService> = fc
  .uniqueArray(
    fc.record({
      index: fc.integer({ min: 0, max: 5000 }),
      addresses: fc.uniqueArray(canonicalPool, { minLength: 1, maxLength: 3 }),
      serving: fc.boolean(),
      terminating: fc.boolean(),
    }),
    // "medium" lets pods x addresses reach past a slice's 100 endpoints; "small", the default, stops near 10 pods.
    { selector: (each) => each.index, maxLength: 260, size: "medium" },
  )
  .map((members) =>
    viewOf(
      members.map(
        (member): MergedEndpoint => ({
          pod: { namespace: "default", name: `pod-${member.index}`, uid: `uid-${member.index}` },
          nodeName: `node-${member.index % 7}`,
          addresses: member.addresses,
          serving: member.serving,
          terminating: member.terminating,
          ready: member.serving && !member.terminating,
        }),
      ),
    ),
  );

t.test("EndpointSlices partition the endpoints exactly, with or without existing slices", async (t) => {
  const owner = netService({ name: "corens" });
  fc.assert(
    fc.property(mergedView, mergedView, fc.nat(), fc.boolean(), (previousView, arrivals, seed, usePrevious) => {
      // Most of the next view is the previous one, as under real churn.
      const stays = (endpoint: MergedEndpoint) => (seed + Number(endpoint.pod.uid.slice(4))) % 3 !== 0;
      const view = viewOf([...previousView.endpoints.filter(stays), ...arrivals.endpoints]);
      const existing = usePrevious ? desiredEndpointSlices(owner, previousView).slices : [];
      const { slices } = desiredEndpointSlices(owner, view, undefined, existing);
      const names = slices.map((slice) => slice.metadata?.name);
      const expected = view.endpoints.flatMap((endpoint) =>
        endpoint.addresses.map((address) => `${endpoint.pod.uid} ${address} ${endpoint.ready}`),
      );
      const actual: string[] = [];
      for (const slice of slices) {
        const sliceEndpoints = slice.endpoints ?? [];
        if (sliceEndpoints.length === 0 || sliceEndpoints.length > maxEndpointsPerSlice) {
          throw new Error(`${slice.metadata?.name} holds ${sliceEndpoints.length} endpoints`);
        }
        if (!new RegExp(`^corens-${slice.addressType.toLowerCase()}-\\d+$`).test(slice.metadata?.name ?? "")) {
          throw new Error(`bad name ${slice.metadata?.name}`);
        }
        for (const endpoint of sliceEndpoints) {
          const [address, ...others] = endpoint.addresses;
          if (address === undefined || others.length > 0) throw new Error("one address per endpoint");
          if (addressFamily(address) !== slice.addressType) throw new Error("mixed families");
          actual.push(`${endpoint.targetRef?.uid} ${address} ${endpoint.conditions?.ready}`);
        }
      }
      if (JSON.stringify(actual.sort()) !== JSON.stringify(expected.sort())) throw new Error("not a partition");
      if (new Set(names).size !== names.length) throw new Error("duplicate slice names");
      const perFamily = (family: string) =>
        expected.filter((pair) => addressFamily(pair.split(" ")[1] ?? "") === family).length;
      const minimal =
        Math.ceil(perFamily("IPv4") / maxEndpointsPerSlice) + Math.ceil(perFamily("IPv6") / maxEndpointsPerSlice);
      if (slices.length > 2 * minimal + 1) throw new Error(`${slices.length} slices for ${minimal} needed`);
    }),
    // Shrinking hundreds of generated endpoints takes many minutes; the seed
    // and path in the failure replay the unshrunk counterexample instead.
    { ...runs, endOnFailure: true },
  );
  t.pass("every pair in exactly one slice of its family");
});

t.test("Endpoints never exceed 1000 addresses and never drop a ready address for a not-ready one", async (t) => {
  const owner = netService({ name: "corens" });
  const bigView = fc
    .tuple(fc.integer({ min: 0, max: 1300 }), fc.integer({ min: 0, max: 1300 }))
    .map(([readyCount, notReadyCount]): MergedNetService => {
      const endpoints = Array.from({ length: readyCount + notReadyCount }, (_, i): MergedEndpoint => ({
        pod: { namespace: "default", name: `p${i}`, uid: `u${i}` },
        nodeName: "n",
        addresses: [`10.${i >> 8}.${i & 255}.1`],
        serving: i < readyCount,
        terminating: false,
        ready: i < readyCount,
      }));
      return {
        endpoints,
        readyEndpoints: readyCount,
        notReadyEndpoints: notReadyCount,
        nodesReporting: 1,
        agents: { reporting: 1, liveNodes: 1 },
        staleNodes: [],
    unservedNodes: [],
      };
    });
  fc.assert(
    fc.property(bigView, (view) => {
      const subset = desiredEndpoints(owner, view).subsets?.[0];
      const readyKept = subset?.addresses?.length ?? 0;
      const notReadyKept = subset?.notReadyAddresses?.length ?? 0;
      const total = view.readyEndpoints + view.notReadyEndpoints;
      if (readyKept + notReadyKept !== Math.min(total, 1000)) throw new Error("wrong count");
      if (readyKept !== Math.min(view.readyEndpoints, 1000)) throw new Error("ready addresses dropped");
    }),
    { numRuns: Math.max(1, Math.floor(propertyRuns / 20)) },
  );
  t.pass("capped, ready first");
});
