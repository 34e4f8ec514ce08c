import t from "tap";
import { reportSpecSchema, type ReportSpec } from "../../common/api.ts";
import {
  buildNodeReport,
  maxReportBytes,
  reportsEqual,
} from "../../common/node-report.ts";
import { attachment, netService, pod } from "./objects.ts";

const corens = netService({ name: "corens", netAttachDef: "core" });
const accessns = netService({ name: "accessns", netAttachDef: "access" });
const idle = netService({ name: "idle", netAttachDef: "core", selector: { app: "nothing" } });

function utilsPod(name: string, core: string[], access: string[] = [], extra = {}) {
  return pod({
    name,
    networkStatus: [
      { name: "", interface: "eth0", ips: ["10.244.0.9"], default: true },
      attachment("default/core", core),
      attachment("default/access", access, { interface: "net2" }),
    ],
    ...extra,
  });
}

t.test("pods are listed once and NetService entries refer to them by index", async (t) => {
  const pods = [
    utilsPod("b", ["10.0.0.2"], ["10.1.0.2"], { ready: false, hostname: "bee", subdomain: "corens" }),
    utilsPod("a", ["10.0.0.1", "fd00::1"], [], { deleting: true }),
    pod({ name: "other", labels: { app: "other" }, networkStatus: [attachment("default/core", ["10.0.0.3"])] }),
  ];
  const report = buildNodeReport("node-1", pods, [corens, accessns, idle]);
  t.same(report, {
    nodeName: "node-1",
    pods: [
      { namespace: "default", name: "a", uid: "uid-a", serving: true, terminating: true },
      { namespace: "default", name: "b", uid: "uid-b", hostname: "bee", subdomain: "corens", serving: false, terminating: false },
    ],
    netServices: [
      {
        namespace: "default",
        name: "accessns",
        uid: "uid-accessns",
        generation: 1,
        endpoints: [{ pod: 1, addresses: ["10.1.0.2"] }],
      },
      {
        namespace: "default",
        name: "corens",
        uid: "uid-corens",
        generation: 1,
        endpoints: [
          { pod: 0, addresses: ["10.0.0.1", "fd00::1"] },
          { pod: 1, addresses: ["10.0.0.2"] },
        ],
      },
    ],
  });
  t.ok(reportSpecSchema.safeParse(report).success, "the report satisfies the report schema");
});

t.test("only NetServices with endpoints on the node get an entry", async (t) => {
  const empty = buildNodeReport("empty-node", [], [corens, idle]);
  t.same(empty, { nodeName: "empty-node", pods: [], netServices: [] }, "a node without pods reports nothing");
  const some = buildNodeReport("n", [utilsPod("a", ["10.0.0.1"])], [accessns, corens, idle]);
  t.same(
    some.netServices.map((entry) => entry.name),
    ["corens"],
    "a selected pod without an address on accessns' network and a NetService selecting nothing give no entry",
  );
});

t.test("equal inputs in any order give byte-equal JSON", async (t) => {
  const pods = [utilsPod("c", ["10.0.0.3"]), utilsPod("a", ["10.0.0.1"]), utilsPod("b", ["10.0.0.2"], ["10.1.0.2"])];
  const netServices = [idle, corens, accessns];
  const first = JSON.stringify(buildNodeReport("n", pods, netServices));
  const second = JSON.stringify(buildNodeReport("n", [...pods].reverse(), [...netServices].reverse()));
  t.equal(first, second);
});

t.test("a deleted pod and its same-named successor, or a deleted NetService and its successor, are listed by uid whatever the cache's order", async (t) => {
  const gone = utilsPod("web-0", ["10.0.0.1"], [], { uid: "uid-2-old", deleting: true });
  const successor = utilsPod("web-0", ["10.0.0.2"], [], { uid: "uid-1-new" });
  const recreated = netService({ name: "corens", uid: "uid-0-recreated", netAttachDef: "core" });
  const first = buildNodeReport("n", [gone, successor], [corens, recreated]);
  const second = buildNodeReport("n", [successor, gone], [recreated, corens]);
  t.equal(JSON.stringify(first), JSON.stringify(second));
  t.same(
    first.pods.map((each) => each.uid),
    ["uid-1-new", "uid-2-old"],
  );
  t.same(
    first.netServices.map((entry) => [entry.uid, entry.endpoints]),
    [
      ["uid-0-recreated", [{ pod: 0, addresses: ["10.0.0.2"] }, { pod: 1, addresses: ["10.0.0.1"] }]],
      ["uid-corens", [{ pod: 0, addresses: ["10.0.0.2"] }, { pod: 1, addresses: ["10.0.0.1"] }]],
    ],
  );
});

t.test("pods of several namespaces are listed by namespace, each with the NetServices of its own namespace", async (t) => {
  const elsewhere = netService({ namespace: "other", name: "corens", uid: "uid-other-corens", netAttachDef: "core" });
  const pods = [
    pod({ name: "z", namespace: "other", networkStatus: [attachment("other/core", ["10.0.1.1"])] }),
    utilsPod("a", ["10.0.0.1"]),
    pod({ name: "y", namespace: "other", networkStatus: [attachment("other/core", ["10.0.1.2"])] }),
  ];
  const report = buildNodeReport("n", pods, [elsewhere, corens]);
  t.same(
    report.pods.map((each) => `${each.namespace}/${each.name}`),
    ["default/a", "other/y", "other/z"],
  );
  t.same(
    report.netServices.map((entry) => [entry.namespace, entry.endpoints]),
    [
      ["default", [{ pod: 0, addresses: ["10.0.0.1"] }]],
      ["other", [{ pod: 1, addresses: ["10.0.1.2"] }, { pod: 2, addresses: ["10.0.1.1"] }]],
    ],
  );
});

t.test("a subdomain is reported only with a hostname: without one no endpoint carries a hostname (as upstream)", async (t) => {
  const report = buildNodeReport("n", [utilsPod("a", ["10.0.0.1"], [], { subdomain: "corens" })], [corens]);
  t.same(report.pods, [{ namespace: "default", name: "a", uid: "uid-a", serving: true, terminating: false }]);
});

t.test("pods and NetServices are listed by namespace and name, not by uid", async (t) => {
  const pods = [utilsPod("b", ["10.0.0.2"], [], { uid: "uid-1" }), utilsPod("a", ["10.0.0.1"], [], { uid: "uid-2" })];
  const second = netService({ name: "b-ns", uid: "uid-1", netAttachDef: "core" });
  const first = netService({ name: "a-ns", uid: "uid-2", netAttachDef: "core" });
  const report = buildNodeReport("n", pods, [second, first]);
  t.same(
    report.pods.map((each) => each.name),
    ["a", "b"],
  );
  t.same(
    report.netServices.map((entry) => entry.name),
    ["a-ns", "b-ns"],
  );
});

t.test("a pod with a malformed annotation is left out; the others are reported", async (t) => {
  const broken = pod({ name: "broken", extraAnnotations: { "k8s.v1.cni.cncf.io/network-status": "[{]" } });
  const report = buildNodeReport("n", [broken, utilsPod("ok", ["10.0.0.1"])], [corens]);
  t.same(
    report.pods.map((each) => each.name),
    ["ok"],
  );
  t.same(report.netServices[0]?.endpoints, [{ pod: 0, addresses: ["10.0.0.1"] }]);
});

t.test("finished pods and pods of other namespaces are not reported", async (t) => {
  const pods = [
    utilsPod("done", ["10.0.0.1"], [], { phase: "Succeeded" }),
    pod({ name: "elsewhere", namespace: "other", networkStatus: [attachment("other/core", ["10.0.0.2"])] }),
  ];
  const report = buildNodeReport("n", pods, [corens]);
  t.same(report.pods, []);
  t.same(report.netServices, []);
});

t.test("reportsEqual ignores only the trigger time", async (t) => {
  const report = buildNodeReport("n", [utilsPod("a", ["10.0.0.1"])], [corens]);
  const stamped: ReportSpec = { ...report, triggerTime: "2026-01-01T00:00:00.000Z" };
  t.ok(reportsEqual(report, stamped));
  t.ok(reportsEqual(stamped, { ...report, triggerTime: "2026-01-02T00:00:00.000Z" }));
  const roundTripped = reportSpecSchema.parse(JSON.parse(JSON.stringify(stamped)));
  t.ok(reportsEqual(report, roundTripped), "equal after a round trip through the API");
  const changed = buildNodeReport("n", [utilsPod("a", ["10.0.0.2"])], [corens]);
  t.notOk(reportsEqual(report, changed), "an address change is a change");
  const unready = buildNodeReport("n", [utilsPod("a", ["10.0.0.1"], [], { ready: false })], [corens]);
  t.notOk(reportsEqual(report, unready), "a readiness change is a change");
});

t.test("the report of a full node stays within one object for realistic loads", async (t) => {
  // 110 pods (the default maxPods), each attached to four networks with
  // dual-stack addresses, and 200 NetServices over those networks.
  const networks = ["core", "access", "storage", "signalling"];
  const pods = Array.from({ length: 110 }, (_, i) =>
    pod({
      name: `statefulset-with-a-long-descriptive-name-${i}`,
      uid: `0b6b4c1e-8a3c-4f6e-9d7a-${String(i).padStart(12, "0")}`,
      labels: { app: "utils", shard: String(i % 10) },
      hostname: `statefulset-with-a-long-descriptive-name-${i}`,
      networkStatus: networks.map((network, n) =>
        attachment(`default/${network}`, [`10.${n}.${i}.1/16`, `fd00:${n}::${i.toString(16)}:1/64`]),
      ),
    }),
  );
  const netServices = Array.from({ length: 200 }, (_, i) =>
    netService({
      name: `netservice-${i}`,
      netAttachDef: networks[i % networks.length] ?? "core",
      selector: i % 2 === 0 ? { app: "utils" } : { app: "utils", shard: String(i % 10) },
    }),
  );
  const report = buildNodeReport("node-with-a-long-name.example.internal", pods, netServices);
  const bytes = Buffer.byteLength(JSON.stringify(report));
  t.equal(report.pods.length, 110, "each pod listed once");
  t.ok(bytes < maxReportBytes, `${bytes} bytes fit in one report`);
});

t.test("thousands of NetServices selecting every pod exceed one object, and the estimate says so", async (t) => {
  const pods = Array.from({ length: 110 }, (_, i) =>
    pod({
      name: `p-${i}`,
      networkStatus: [attachment("default/core", [`10.0.${i}.1`, `fd00::${i.toString(16)}:1`])],
    }),
  );
  const netServices = Array.from({ length: 1000 }, (_, i) => netService({ name: `ns-${i}` }));
  const report = buildNodeReport("n", pods, netServices);
  t.equal(report.pods.length, 110, "pods are still listed once");
  t.ok(Buffer.byteLength(JSON.stringify(report)) > maxReportBytes, "the agent must split this report");
});
