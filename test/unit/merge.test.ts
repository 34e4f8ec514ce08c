import t from "tap";
import type { ReportSpec } from "../../common/api.ts";
import { healthyNodes, mergeReports, type NodeReport } from "../../common/merge.ts";
import { netService } from "./objects.ts";

const corens = netService({ name: "corens", uid: "uid-corens", generation: 3 });

type ReportedPod = {
  name: string;
  uid?: string;
  serving?: boolean;
  terminating?: boolean;
  hostname?: string;
  subdomain?: string;
  addresses: string[];
};

function report(
  nodeName: string,
  pods: ReportedPod[],
  options: { triggerTime?: string; uid?: string; generation?: number; namespace?: string } = {},
): NodeReport {
  const spec: ReportSpec = {
    nodeName,
    ...(options.triggerTime ? { triggerTime: options.triggerTime } : {}),
    pods: pods.map((each) => ({
      namespace: options.namespace ?? "default",
      name: each.name,
      uid: each.uid ?? `uid-${each.name}`,
      ...(each.hostname ? { hostname: each.hostname } : {}),
      ...(each.subdomain ? { subdomain: each.subdomain } : {}),
      serving: each.serving ?? true,
      terminating: each.terminating ?? false,
    })),
    netServices: [
      {
        namespace: options.namespace ?? "default",
        name: "corens",
        uid: options.uid ?? "uid-corens",
        generation: options.generation ?? 3,
        endpoints: pods.map((each, index) => ({ pod: index, addresses: each.addresses })),
      },
    ],
  };
  return { nodeName, spec };
}

t.test("reports of live nodes merge into one sorted view with readiness and counts", async (t) => {
  const merged = mergeReports(
    corens,
    [
      report("node-b", [{ name: "b", serving: false, addresses: ["10.0.0.2"] }], {
        triggerTime: "2026-01-01T00:00:02.000Z",
      }),
      report("node-a", [{ name: "a", hostname: "aye", subdomain: "corens", addresses: ["10.0.0.1", "fd00::1"] }], {
        triggerTime: "2026-01-01T00:00:01.000Z",
      }),
    ],
    healthyNodes(["node-a", "node-b"]),
  );
  t.same(merged, {
    endpoints: [
      {
        pod: { namespace: "default", name: "a", uid: "uid-a" },
        nodeName: "node-a",
        hostname: "aye",
        addresses: ["10.0.0.1", "fd00::1"],
        serving: true,
        terminating: false,
        ready: true,
      },
      {
        pod: { namespace: "default", name: "b", uid: "uid-b" },
        nodeName: "node-b",
        addresses: ["10.0.0.2"],
        serving: false,
        terminating: false,
        ready: false,
      },
    ],
    readyEndpoints: 1,
    notReadyEndpoints: 1,
    nodesReporting: 2,
    agents: { reporting: 2, liveNodes: 2 },
    staleNodes: [],
    unservedNodes: [],
    triggerTime: "2026-01-01T00:00:02.000Z",
  });
});

t.test("a report of a node that is no longer live is ignored", async (t) => {
  const merged = mergeReports(
    corens,
    [
      report("alive", [{ name: "a", addresses: ["10.0.0.1"] }]),
      report("dead", [{ name: "b", addresses: ["10.0.0.2"] }]),
    ],
    healthyNodes(["alive"]),
  );
  t.same(
    merged.endpoints.map((endpoint) => endpoint.pod.name),
    ["a"],
  );
  t.equal(merged.nodesReporting, 1);
  t.same(merged.agents, { reporting: 1, liveNodes: 1 }, "the dead node's agent does not count either");
});

t.test("entries of another NetService incarnation (different uid) are ignored", async (t) => {
  const merged = mergeReports(
    corens,
    [
      report("n1", [{ name: "a", addresses: ["10.0.0.1"] }], { uid: "uid-of-deleted-corens" }),
      report("n2", [{ name: "b", addresses: ["10.0.0.2"] }]),
    ],
    healthyNodes(["n1", "n2"]),
  );
  t.same(
    merged.endpoints.map((endpoint) => endpoint.pod.name),
    ["b"],
  );
  t.equal(merged.nodesReporting, 1, "a node reporting only the old incarnation does not count");
});

t.test("entries about pods of another namespace are ignored", async (t) => {
  const merged = mergeReports(
    corens,
    [report("n1", [{ name: "a", addresses: ["10.0.0.1"] }], { namespace: "other" })],
    healthyNodes(["n1"]),
  );
  t.same(merged.endpoints, []);
});

t.test("a pod in two reports appears once, from the newest report", async (t) => {
  const older = report("old-node", [{ name: "web-0", uid: "uid-1", addresses: ["10.0.0.1"] }], {
    triggerTime: "2026-01-01T00:00:01.000Z",
  });
  const newer = report("new-node", [{ name: "web-0", uid: "uid-2", addresses: ["10.0.0.9"] }], {
    triggerTime: "2026-01-01T00:00:05.000Z",
  });
  for (const reports of [
    [older, newer],
    [newer, older],
  ]) {
    const merged = mergeReports(corens, reports, healthyNodes(["old-node", "new-node"]));
    t.same(
      merged.endpoints.map((endpoint) => [endpoint.pod.uid, endpoint.nodeName, endpoint.addresses]),
      [["uid-2", "new-node", ["10.0.0.9"]]],
    );
    t.equal(merged.readyEndpoints, 1);
  }
  const undated = report("a-node", [{ name: "web-0", uid: "uid-3", addresses: ["10.0.0.3"] }]);
  const merged = mergeReports(corens, [undated, older], healthyNodes(["a-node", "old-node"]));
  t.equal(merged.endpoints[0]?.nodeName, "old-node", "a report without a trigger time counts as the oldest");
});

t.test("readiness follows publishNotReadyAddresses of the NetService, not of the report", async (t) => {
  const reports = [
    report("n", [
      { name: "unready", serving: false, addresses: ["10.0.0.1"] },
      { name: "leaving", serving: true, terminating: true, addresses: ["10.0.0.2"] },
    ]),
  ];
  const strict = mergeReports(corens, reports, healthyNodes(["n"]));
  t.same(
    strict.endpoints.map((endpoint) => endpoint.ready),
    [false, false],
  );
  const publishAll = netService({ uid: "uid-corens", publishNotReadyAddresses: true });
  const lenient = mergeReports(publishAll, reports, healthyNodes(["n"]));
  t.same(
    lenient.endpoints.map((endpoint) => endpoint.ready),
    [true, true],
  );
  t.equal(lenient.readyEndpoints, 2);
});

t.test("addresses from reports are checked again and filtered by ipFamilies", async (t) => {
  const reports = [report("n", [{ name: "a", addresses: ["fd00:0::1", "10.0.0.1", "127.0.0.1", "bogus"] }])];
  t.same(mergeReports(corens, reports, healthyNodes(["n"])).endpoints[0]?.addresses, ["10.0.0.1", "fd00::1"]);
  const v6 = netService({ uid: "uid-corens", ipFamilies: ["IPv6"] });
  t.same(mergeReports(v6, reports, healthyNodes(["n"])).endpoints[0]?.addresses, ["fd00::1"]);
  const onlyBad = [report("n", [{ name: "a", addresses: ["127.0.0.1"] }])];
  t.same(mergeReports(corens, onlyBad, healthyNodes(["n"])).endpoints, [], "a pod without a valid address is no endpoint");
});

t.test("nodes that computed their entry from an older generation are named", async (t) => {
  const merged = mergeReports(
    corens,
    [
      report("behind", [{ name: "a", addresses: ["10.0.0.1"] }], { generation: 2 }),
      report("current", [{ name: "b", addresses: ["10.0.0.2"] }]),
    ],
    healthyNodes(["behind", "current"]),
  );
  t.same(merged.staleNodes, ["behind"]);
  t.equal(merged.oldestGeneration, 2);
  t.equal(merged.endpoints.length, 2, "their endpoints stay until they catch up");
});

t.test("a dangling pod index is ignored", async (t) => {
  const broken = report("n", [{ name: "a", addresses: ["10.0.0.1"] }]);
  broken.spec.netServices[0]?.endpoints.push({ pod: 7, addresses: ["10.0.0.7"] });
  t.equal(mergeReports(corens, [broken], healthyNodes(["n"])).endpoints.length, 1);
});

t.test("endpoints of a node that does not serve are published not serving and not ready, with the zone of their node", async (t) => {
  const reports = [
    { ...report("up", [{ name: "a", addresses: ["10.0.0.1"] }]), nodeUid: "uid-up" },
    { ...report("down", [{ name: "b", addresses: ["10.0.0.2"] }, { name: "c", terminating: true, addresses: ["10.0.0.3"] }]), nodeUid: "uid-down" },
  ];
  const cases = [
    { problem: "NodeNotReady" as const, publishNotReady: false, ready: [true, false, false] },
    { problem: "NodeUnreachable" as const, publishNotReady: false, ready: [true, false, false] },
    { problem: "AgentHeartbeatStale" as const, publishNotReady: false, ready: [true, false, false] },
    { problem: "AgentHeartbeatMissing" as const, publishNotReady: true, ready: [true, true, true] },
  ];
  for (const { problem, publishNotReady, ready } of cases) {
    const nodes = new Map([
      ["up", { uid: "uid-up", serving: true, zone: "zone-a" }],
      ["down", { uid: "uid-down", serving: false, problem, zone: "zone-b" }],
    ]);
    const ns = netService({ name: "corens", uid: "uid-corens", generation: 3, publishNotReadyAddresses: publishNotReady });
    const merged = mergeReports(ns, reports, nodes);
    t.same(
      merged.endpoints.map((endpoint) => [endpoint.pod.name, endpoint.serving, endpoint.ready, endpoint.zone]),
      [
        ["a", true, ready[0], "zone-a"],
        ["b", false, ready[1], "zone-b"],
        ["c", false, ready[2], "zone-b"],
      ],
      problem,
    );
    t.same(merged.unservedNodes, [{ name: "down", problem }], `${problem}: the node is named with why`);
  }
});

t.test("a report owned by an earlier Node of the same name, or by none, contributes nothing", async (t) => {
  const nodes = new Map([["n", { uid: "uid-new", serving: true }]]);
  const pods = [{ name: "a", addresses: ["10.0.0.1"] }];
  t.equal(mergeReports(corens, [{ ...report("n", pods), nodeUid: "uid-new" }], nodes).endpoints.length, 1);
  t.equal(mergeReports(corens, [{ ...report("n", pods), nodeUid: "uid-old" }], nodes).endpoints.length, 0, "an old Node's report");
  t.equal(mergeReports(corens, [report("n", pods)], nodes).endpoints.length, 0, "a report without an owner");
  t.equal(mergeReports(corens, [{ ...report("gone", pods), nodeUid: "uid-gone" }], nodes).endpoints.length, 0, "a deleted Node's report");
});

t.test("a trigger time in the future counts as now: it neither wins a duplicate nor is published", async (t) => {
  const now = Date.parse("2026-06-01T00:00:00.000Z");
  const honest = report("honest", [{ name: "web-0", uid: "uid-1", addresses: ["10.0.0.1"] }], { triggerTime: "2026-06-01T00:00:00.000Z" });
  const liar = report("liar", [{ name: "web-0", uid: "uid-2", addresses: ["10.6.6.6"] }], { triggerTime: "2099-01-01T00:00:00.000Z" });
  for (const reports of [[honest, liar], [liar, honest]]) {
    const merged = mergeReports(corens, reports, healthyNodes(["honest", "liar"]), now);
    t.same(merged.endpoints.map((endpoint) => endpoint.nodeName), ["honest"], "a tie at now goes to the node name, not to the claim");
    t.equal(merged.triggerTime, "2026-06-01T00:00:00.000Z");
  }
});

t.test("a pod's hostname is published only by the NetService its subdomain names, as upstream", async (t) => {
  const cases: { subdomain?: string; published: string | undefined }[] = [
    { subdomain: "corens", published: "aye" },
    { subdomain: "other-service", published: undefined },
    { published: undefined },
  ];
  for (const { subdomain, published } of cases) {
    const merged = mergeReports(corens, [report("n", [{ name: "a", hostname: "aye", ...(subdomain ? { subdomain } : {}), addresses: ["10.0.0.1"] }])], healthyNodes(["n"]));
    t.equal(merged.endpoints[0]?.hostname, published, `subdomain ${subdomain ?? "(none)"}`);
  }
});

t.test("several nodes behind: all are named in order, with the oldest generation among them", async (t) => {
  const reports = [
    report("n3", [{ name: "c", addresses: ["10.0.0.3"] }], { generation: 2 }),
    report("n1", [{ name: "a", addresses: ["10.0.0.1"] }], { generation: 1 }),
    report("n2", [{ name: "b", addresses: ["10.0.0.2"] }], { generation: 2 }),
  ];
  for (const listed of [reports, [...reports].reverse()]) {
    const merged = mergeReports(corens, listed, healthyNodes(["n1", "n2", "n3"]));
    t.same(merged.staleNodes, ["n1", "n2", "n3"]);
    t.equal(merged.oldestGeneration, 1);
  }
  const current = mergeReports(corens, [report("n1", [{ name: "a", addresses: ["10.0.0.1"] }])], healthyNodes(["n1"]));
  t.notOk("oldestGeneration" in current, "no generation is claimed when no node is behind");
});

t.test("nodes that do not serve are named in order; a node not serving for no given reason counts as NotReady", async (t) => {
  const nodes = new Map([
    ["n-b", { serving: false, problem: "NodeUnreachable" as const }],
    ["n-a", { serving: false }],
    ["n-c", { serving: true }],
  ]);
  const merged = mergeReports(
    corens,
    [
      report("n-b", [{ name: "b", addresses: ["10.0.0.2"] }]),
      report("n-c", [{ name: "c", addresses: ["10.0.0.3"] }]),
      report("n-a", [{ name: "a", addresses: ["10.0.0.1"] }]),
    ],
    nodes,
  );
  t.same(merged.unservedNodes, [
    { name: "n-a", problem: "NodeNotReady" },
    { name: "n-b", problem: "NodeUnreachable" },
  ]);
});

t.test("an agent that has published counts as reporting even without endpoints of this NetService", async (t) => {
  const other = report("idle", [{ name: "x", addresses: ["10.0.0.9"] }], { uid: "uid-other" });
  const merged = mergeReports(corens, [other, report("busy", [{ name: "a", addresses: ["10.0.0.1"] }])], healthyNodes(["idle", "busy", "new"]));
  t.equal(merged.nodesReporting, 1, "only the node with endpoints of this NetService");
  t.same(merged.agents, { reporting: 2, liveNodes: 3 });
});

t.test("an entry pointing at a pod of another namespace publishes nothing of that pod", async (t) => {
  const broken = report("n", [{ name: "a", addresses: ["10.0.0.1"] }]);
  broken.spec.pods.push({ namespace: "other", name: "intruder", uid: "uid-intruder", serving: true, terminating: false });
  broken.spec.netServices[0]?.endpoints.push({ pod: 1, addresses: ["10.0.0.66"] });
  t.same(
    mergeReports(corens, [broken], healthyNodes(["n"])).endpoints.map((endpoint) => endpoint.pod.name),
    ["a"],
  );
});

t.test("an empty ipFamilies list publishes both families; one address written two ways is published once", async (t) => {
  const reports = [report("n", [{ name: "a", addresses: ["fd00::1", "10.0.0.1", "fd00:0:0::1", "10.0.0.1"] }])];
  const anyFamily = netService({ uid: "uid-corens", ipFamilies: [] });
  t.same(mergeReports(anyFamily, reports, healthyNodes(["n"])).endpoints[0]?.addresses, ["10.0.0.1", "fd00::1"]);
});

t.test("the newest trigger time is published whatever the order of the reports; an unparsable one counts as the oldest", async (t) => {
  const older = report("n1", [{ name: "a", addresses: ["10.0.0.1"] }], { triggerTime: "2026-01-01T00:00:01.000Z" });
  const newer = report("n2", [{ name: "b", addresses: ["10.0.0.2"] }], { triggerTime: "2026-01-01T00:00:02.000Z" });
  const garbled = report("n3", [{ name: "c", addresses: ["10.0.0.3"] }], { triggerTime: "yesterday" });
  const nodes = healthyNodes(["n1", "n2", "n3"]);
  for (const reports of [[older, newer, garbled], [garbled, newer, older], [newer, garbled, older]]) {
    const merged = mergeReports(corens, reports, nodes);
    t.equal(merged.triggerTime, "2026-01-01T00:00:02.000Z", reports.map((each) => each.nodeName).join(","));
    t.equal(merged.endpoints.length, 3);
  }
});

t.test("a pod in two reports comes from the newer one even when the older one's node name sorts first, in either order", async (t) => {
  const older = report("a-node", [{ name: "web-0", uid: "uid-1", addresses: ["10.0.0.1"] }], { triggerTime: "2026-01-01T00:00:01.000Z" });
  const newer = report("z-node", [{ name: "web-0", uid: "uid-2", addresses: ["10.0.0.2"] }], { triggerTime: "2026-01-01T00:00:05.000Z" });
  for (const reports of [[older, newer], [newer, older]]) {
    t.same(mergeReports(corens, reports, healthyNodes(["a-node", "z-node"])).endpoints.map((endpoint) => endpoint.nodeName), ["z-node"]);
  }
});

t.test("nodes looked up without a uid take the reports of their name whoever owns them", async (t) => {
  const owned = { ...report("n", [{ name: "a", addresses: ["10.0.0.1"] }]), nodeUid: "uid-any" };
  t.equal(mergeReports(corens, [owned], healthyNodes(["n"])).endpoints.length, 1);
});
