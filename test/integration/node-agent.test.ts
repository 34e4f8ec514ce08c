// The node agent against a real API server: the test plays kubelet and Multus
// (pods bound to nodes, their status and network-status written through the
// API, with real Multus values from the public samples), and checks what the
// agent publishes in its node's report.
import { spawn } from "node:child_process";
import { reportPartName } from "../../common/report-parts.ts";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import path from "node:path";
import t from "tap";
import { apiVersion, labels, reportPlural, reportSpecSchema, type ReportSpec } from "../../common/api.ts";
import { createRootLogger } from "../../common/log.ts";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients } from "../../common/kube/client.ts";
import { loadKubeConfig } from "../../common/kube/kubeconfig.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { resourcePath } from "../../common/kube/resources.ts";
import { freePort } from "../../hack/cluster/process.ts";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { NodeAgent, netServiceInformer, type NetServiceSource, type NodeAgentOptions } from "../../node-agent/agent.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { boundedTeardown } from "../helpers/teardown.ts";
import {
  applyNamespaces,
  applyNodes,
  createPod,
  deletePod,
  getObject,
  netServiceObject,
  setPodAnnotations,
  setPodReady,
} from "../helpers/objects.ts";

const repoRoot = path.resolve(import.meta.dirname, "..", "..");
const systemNamespace = "netservice-system";
const node = "node-a";
const otherNode = "node-b";

type Sample = { name: string; podNamespace: string; value: string; expect: Record<string, string[]> };
// ../shared/ beside the project: real annotation values, as Multus wrote them.
const samplesFile = path.join(repoRoot, "..", "shared", "fixtures", "network-status", "public-samples.json");
const samples = (JSON.parse(await readFile(samplesFile, "utf8")) as { cases: Sample[] }).cases;

const plane = await startControlPlane(t);
const clients = makeClients(loadKubeConfig({ kubeconfig: plane.kubeconfig, env: {} }), { userAgent: "netservice-test/0.1.0" });
boundedTeardown(t, { name: "clients", timeoutMs: 10_000, run: () => clients.close() });
const { http } = clients;
const applier = new Applier(http, { fieldManager: "netservice-test" });
const logger = createRootLogger({
  env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", LOG_FORMAT: "text" },
  destination: { write: (line: string) => process.stderr.write(line) },
});

await applyManifests(
  applier,
  http,
  await loadManifests(
    path.join(repoRoot, "crds", "netservice.yaml"),
    path.join(repoRoot, "crds", "netservicenodereport.yaml"),
    path.join(repoRoot, "hack", "crds", "network-attachment-definition.yaml"),
  ),
);
await applyNamespaces(applier, systemNamespace, ...new Set(samples.map((s) => s.podNamespace)));
await applyNodes(applier, node, otherNode);

// One pod per sample on the agent's node, and per expected network a
// NetService that selects just that pod.
const podName = (i: number) => `sample-${i}`;
const netServiceName = (i: number, j: number) => `sample-${i}-${j}`;
const sampleIndex = (name: string) => samples.findIndex((s) => s.name === name);
const dual = sampleIndex("spec-example-cidr-form");
const vlan = sampleIndex("dual-stack-bare-names");
const oldMultus = sampleIndex("ipv4-old-multus-bare-name");
if (dual < 0 || vlan < 0 || oldMultus < 0) throw new Error(`${samplesFile} lacks a sample this test relies on`);

for (const [i, sample] of samples.entries()) {
  await createPod(http, { namespace: sample.podNamespace, name: podName(i), nodeName: node, labels: { sample: `s${i}` }, networkStatus: sample.value });
  for (const [j, netAttachDef] of Object.keys(sample.expect).entries()) {
    await applier.apply(netServiceObject(sample.podNamespace, netServiceName(i, j), { netAttachDef, selector: { sample: `s${i}` } }));
  }
}
// Selected like sample oldMultus's pod, but on another node.
await createPod(http, { namespace: "default", name: "elsewhere", nodeName: otherNode, labels: { sample: `s${oldMultus}` }, networkStatus: samples[oldMultus]!.value });
// Malformed, but no NetService selects it: no Event.
await createPod(http, { namespace: "default", name: "unselected", nodeName: node, labels: { app: "nobody" }, networkStatus: "{oops" });
await applier.apply(netServiceObject("default", "idle", { netAttachDef: "core", selector: { app: "nothing" } }));

/** The node's report: its first part, the only one here. */
const reportPath = (nodeName: string) =>
  resourcePath({ apiVersion, plural: reportPlural, namespace: systemNamespace, name: reportPartName(nodeName, 0) });

async function readReport(nodeName = node): Promise<{ object: KubeObject; spec: ReportSpec }> {
  const object = await getObject(http, reportPath(nodeName));
  if (!object) throw new Error(`no report for ${nodeName}`);
  return { object, spec: reportSpecSchema.parse(object.spec) };
}

/** The endpoints of one NetService's entry, by pod name. */
function endpointsOf(spec: ReportSpec, namespace: string, name: string) {
  // No entry: the NetService has no endpoints on this node.
  const entry = spec.netServices.find((e) => e.namespace === namespace && e.name === name);
  return new Map(
    (entry?.endpoints ?? []).map((endpoint) => {
      const pod = spec.pods[endpoint.pod];
      if (!pod) throw new Error(`endpoint refers to pod ${endpoint.pod}, which the report does not list`);
      return [pod.name, { ...pod, addresses: endpoint.addresses }];
    }),
  );
}

function podOf(spec: ReportSpec, namespace: string, name: string) {
  return spec.pods.find((p) => p.namespace === namespace && p.name === name);
}

async function events(namespace: string, podName: string, reason: string) {
  const list = await http.request<{ items: { reason?: string; type?: string; note?: string; regarding?: { name?: string; uid?: string } }[] }>({
    method: "GET",
    path: resourcePath({ apiVersion: "events.k8s.io/v1", plural: "events", namespace }),
  });
  return list.items.filter((e) => e.regarding?.name === podName && e.reason === reason);
}

function agentFor(nodeName: string, options: NodeAgentOptions = {}): NodeAgent {
  const agent = new NodeAgent(nodeName, clients, { systemNamespace, debounceMs: 200, verifyPeriodMs: 0, logger, ...options });
  boundedTeardown(t, { name: "agent", timeoutMs: 30_000, run: () => agent.stop() });
  return agent;
}

let agent = agentFor(node);
await agent.start();

t.test("the first report lists the node's pods with the samples' addresses, and an entry per NetService with endpoints", async (t) => {
  const { object, spec } = await readReport();
  t.equal(spec.nodeName, node);
  t.equal(object.metadata?.labels?.[labels.nodeName], node, "labelled with its node");
  t.match(spec.triggerTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "triggerTime is RFC 3339 with milliseconds");
  t.equal(agent.stats.reportsWritten, 1, "written once");
  t.ok(agent.ready, "ready once started");

  for (const [i, sample] of samples.entries()) {
    for (const [j, [netAttachDef, expected]] of Object.entries(sample.expect).entries()) {
      const endpoints = endpointsOf(spec, sample.podNamespace, netServiceName(i, j));
      if (expected.length === 0) {
        t.notOk(
          spec.netServices.some((e) => e.namespace === sample.podNamespace && e.name === netServiceName(i, j)),
          `${sample.name}, ${netAttachDef}: attached without addresses, no entry`,
        );
        continue;
      }
      t.same([...endpoints.keys()], [podName(i)], `${sample.name}, ${netAttachDef}: only its pod, and only from this node`);
      t.same([...(endpoints.get(podName(i))?.addresses ?? [])].sort(), [...expected].sort(), `${sample.name}, ${netAttachDef}: addresses`);
    }
  }
  t.notOk(spec.netServices.some((e) => e.name === "idle"), "a NetService selecting nothing has no entry");
  const contributing = samples.flatMap((s, i) => (Object.values(s.expect).some((a) => a.length > 0) ? [podName(i)] : []));
  t.same(spec.pods.map((p) => p.name).sort(), contributing.sort(), "pods are listed only when they contribute");
  t.notOk(podOf(spec, "default", "elsewhere"), "a pod of another node is not listed");
  t.ok(spec.pods.every((p) => p.serving && !p.terminating), "all serving");
  t.same(await events("default", "unselected", "MalformedNetworkStatus"), [], "no Event for a pod no NetService selects");
});

t.test("a readiness flip changes serving, and back", async (t) => {
  const namespace = samples[dual]!.podNamespace;
  await setPodReady(http, namespace, podName(dual), false);
  await eventually(async () => {
    const { spec } = await readReport();
    const pod = podOf(spec, namespace, podName(dual));
    expect(pod?.serving === false, `serving is ${pod?.serving}`);
    expect(endpointsOf(spec, namespace, netServiceName(dual, 0)).size === 1, "an unready pod keeps its endpoint");
  });
  await setPodReady(http, namespace, podName(dual), true);
  await eventually(async () => {
    const pod = podOf((await readReport()).spec, namespace, podName(dual));
    expect(pod?.serving === true, `serving is ${pod?.serving}`);
  });
  t.pass("followed both ways");
});

t.test("a changed network-status address is followed", async (t) => {
  const namespace = samples[dual]!.podNamespace;
  const changed = samples[dual]!.value.replace("1.2.3.4/24", "1.2.3.5/24");
  t.not(changed, samples[dual]!.value);
  await setPodAnnotations(http, namespace, podName(dual), { "k8s.v1.cni.cncf.io/network-status": changed });
  await eventually(async () => {
    const addresses = endpointsOf((await readReport()).spec, namespace, netServiceName(dual, 0)).get(podName(dual))?.addresses;
    expect(JSON.stringify(addresses) === JSON.stringify(["1.2.3.5", "2001:abba::2234"]), `addresses ${JSON.stringify(addresses)}`);
  });
  t.pass("the new address is published");
});

// How many writes a burst takes depends on when the API server delivers the
// five events relative to the 200 ms debounce: a figure here, not an
// assertion. That a burst within the debounce is one batch, published as of
// its first change, is proved with explicit times in node-agent-batch.test.ts.
t.test("a burst of changes is published, and the writes it took are reported", async (t) => {
  const pods = samples.map((s, i) => ({ namespace: s.podNamespace, name: podName(i) })).slice(0, 5);
  for (const ready of [false, true]) {
    const before = agent.stats.reportsWritten;
    await Promise.all(pods.map((p) => setPodReady(http, p.namespace, p.name, ready)));
    await eventually(async () => {
      const { spec } = await readReport();
      for (const p of pods) {
        const listed = podOf(spec, p.namespace, p.name);
        expect(listed === undefined || listed.serving === ready, `${p.name} serving ${listed?.serving}`);
      }
      // The agent counts a write once its response arrives, which can be after the report is readable.
      expect(agent.stats.reportsWritten > before, "the agent has not counted the write yet");
    });
    const writes = agent.stats.reportsWritten - before;
    t.ok(writes >= 1, "the report was written");
    t.comment(`${pods.length} readiness changes took ${writes} writes`);
  }
});

t.test("a malformed annotation leaves only that pod out, with one warning Event per value", async (t) => {
  const namespace = samples[vlan]!.podNamespace;
  const pod = podName(vlan);
  const before = (await readReport()).spec;
  const othersBefore = before.netServices.filter((e) => !e.name.startsWith(`sample-${vlan}-`));

  await setPodAnnotations(http, namespace, pod, { "k8s.v1.cni.cncf.io/network-status": '[{"name": "vlan-net1", "ips": "148.14.24.2"}]' });
  const after = await eventually(async () => {
    const { spec } = await readReport();
    expect(podOf(spec, namespace, pod) === undefined, "the pod is still listed");
    return spec;
  });
  t.equal(endpointsOf(after, namespace, netServiceName(vlan, 0)).size, 0, "vlan-net1 has no endpoint");
  t.equal(endpointsOf(after, namespace, netServiceName(vlan, 1)).size, 0, "vlan-net2 has no endpoint");
  for (const entry of othersBefore) {
    t.same(endpointsOf(after, entry.namespace, entry.name), endpointsOf(before, entry.namespace, entry.name), `${entry.name} unaffected`);
  }
  const [warning] = await eventually(async () => {
    const found = await events(namespace, pod, "MalformedNetworkStatus");
    expect(found.length === 1, `${found.length} events`);
    return found;
  });
  t.equal(warning?.type, "Warning");
  t.match(warning?.note, /network-status.*left out of NetServices sample-\d+-0, sample-\d+-1/, `note: ${warning?.note}`);

  // More recomputes with the same broken value: still one Event.
  const other = { namespace: samples[dual]!.podNamespace, name: podName(dual) };
  await setPodReady(http, other.namespace, other.name, false);
  await eventually(async () => expect(podOf((await readReport()).spec, other.namespace, other.name)?.serving === false, "not yet"));
  await setPodReady(http, other.namespace, other.name, true);
  await eventually(async () => expect(podOf((await readReport()).spec, other.namespace, other.name)?.serving === true, "not yet"));
  t.equal((await events(namespace, pod, "MalformedNetworkStatus")).length, 1, "no second Event for the same value");

  await setPodAnnotations(http, namespace, pod, { "k8s.v1.cni.cncf.io/network-status": "not json" });
  await eventually(async () => {
    const found = await events(namespace, pod, "MalformedNetworkStatus");
    expect(found.length === 2, `${found.length} events`);
  });
  t.pass("another broken value, another Event");

  await setPodAnnotations(http, namespace, pod, { "k8s.v1.cni.cncf.io/network-status": samples[vlan]!.value });
  await eventually(async () => expect(endpointsOf((await readReport()).spec, namespace, netServiceName(vlan, 0)).size === 1, "not back yet"));
  t.same(await events("default", "unselected", "MalformedNetworkStatus"), [], "still no Event for the unselected pod");
});

t.test("NetServices created, edited and deleted while running", async (t) => {
  const selector = { sample: `s${oldMultus}` };
  await applier.apply(netServiceObject("default", "late", { netAttachDef: "macvlan-conf", selector }));
  await eventually(async () => expect(endpointsOf((await readReport()).spec, "default", "late").has(podName(oldMultus)), "no endpoint yet"));
  const entryOfLate = async () => (await readReport()).spec.netServices.find((e) => e.name === "late");
  await applier.apply(netServiceObject("default", "late", { netAttachDef: "macvlan-conf", selector, ports: [{ port: 53, protocol: "UDP" }] }));
  await eventually(async () => {
    const entry = await entryOfLate();
    expect(entry?.generation === 2 && entry.endpoints.length === 1, `entry ${JSON.stringify(entry)}`);
  });
  await applier.apply(netServiceObject("default", "late", { netAttachDef: "elsewhere", selector }));
  await eventually(async () => expect((await entryOfLate()) === undefined, "an entry without endpoints is still there"));
  await applier.apply(netServiceObject("default", "late", { netAttachDef: "macvlan-conf", selector }));
  await eventually(async () => expect((await entryOfLate())?.generation === 4, "not back for generation 4"));
  await http.request({ method: "DELETE", path: resourcePath({ apiVersion, plural: "netservices", namespace: "default", name: "late" }) });
  await eventually(async () => expect((await entryOfLate()) === undefined, "entry still there"));
  t.pass("entry added, recomputed for each new generation, dropped while it selects no address, removed");
});

t.test("a terminating pod is reported as terminating", async (t) => {
  const namespace = samples[oldMultus]!.podNamespace;
  await createPod(http, { namespace, name: "leaving", nodeName: node, labels: { sample: `s${oldMultus}` }, networkStatus: samples[oldMultus]!.value });
  await eventually(async () => expect(podOf((await readReport()).spec, namespace, "leaving") !== undefined, "not listed yet"));
  // No kubelet confirms the deletion, so the pod stays terminating.
  await deletePod(http, namespace, "leaving");
  await eventually(async () => {
    const pod = podOf((await readReport()).spec, namespace, "leaving");
    expect(pod?.terminating === true, `terminating ${pod?.terminating}`);
  });
  await deletePod(http, namespace, "leaving", 0);
  await eventually(async () => expect(podOf((await readReport()).spec, namespace, "leaving") === undefined, "still listed"));
  t.pass("terminating, then gone");
});

t.test("a restarted agent writes nothing when nothing changed", async (t) => {
  const before = (await readReport()).object.metadata?.resourceVersion;
  await agent.stop();
  t.equal((await readReport()).object.metadata?.resourceVersion, before, "stop keeps the report as it was");
  agent = agentFor(node);
  await agent.start();
  // Longer than the debounce, so a write would have happened by now.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.equal((await readReport()).object.metadata?.resourceVersion, before, "the report is untouched");
  t.equal(agent.stats.reportsWritten, 0, "no write");
  t.ok(agent.stats.recomputes >= 1, "but a full recompute");
});

t.test("a restarted agent converges on what changed while it was down", async (t) => {
  await agent.stop();
  const namespace = samples[oldMultus]!.podNamespace;
  await setPodReady(http, namespace, podName(oldMultus), false);
  await createPod(http, { namespace, name: "newcomer", nodeName: node, labels: { sample: `s${oldMultus}` }, networkStatus: samples[oldMultus]!.value.replace("192.168.1.205", "192.168.1.206") });
  agent = agentFor(node, { verifyPeriodMs: 500 });
  await agent.start();
  const { spec } = await readReport();
  t.equal(podOf(spec, namespace, podName(oldMultus))?.serving, false, "the readiness change is published at start");
  t.same(endpointsOf(spec, namespace, netServiceName(oldMultus, 0)).get("newcomer")?.addresses, ["192.168.1.206"], "the new pod too");
  t.equal(agent.stats.reportsWritten, 1, "in one write");

  const { object } = await readReport();
  await applier.delete(object);
  await eventually(async () => expect((await getObject(http, reportPath(node))) !== undefined, "not restored yet"), { timeoutMs: 30_000 });
  t.pass("a deleted report is restored at the next verification");
});

t.test("agents share one NetService watch; each reports only its node's pods", async (t) => {
  const netServices = netServiceInformer(http, { logger }).start();
  boundedTeardown(t, { name: "NetService watch", timeoutMs: 10_000, run: () => netServices.stop() });
  // One object the API server would not accept today (stored under an older
  // schema, say): the agent must skip it and publish the rest.
  // It would select the other node's pod on its network if it were valid.
  const invalid = netServiceObject("default", "invalid", { netAttachDef: Object.keys(samples[oldMultus]!.expect)[0]!, selector: { sample: `s${oldMultus}` }, ports: [{ port: 0 }] });
  const withInvalid: NetServiceSource = {
    get synced() { return netServices.synced; },
    get hasSynced() { return netServices.hasSynced; },
    list: () => [...netServices.list(), { ...invalid, metadata: { ...invalid.metadata, uid: "u", resourceVersion: "1" } }],
    onChange: (handler) => netServices.onChange(handler),
  };
  const other = agentFor(otherNode, { netServices: withInvalid });
  await other.start();
  const { spec } = await readReport(otherNode);
  t.same(spec.pods.map((p) => p.name), ["elsewhere"], "only the other node's pod");
  t.same([...endpointsOf(spec, "default", netServiceName(oldMultus, 0)).keys()], ["elsewhere"]);
  t.same(
    spec.netServices.map((e) => e.name),
    Object.keys(samples[oldMultus]!.expect).map((_, j) => netServiceName(oldMultus, j)).sort(),
    "entries only for the NetServices that select its pod",
  );
  t.notOk(spec.netServices.some((e) => e.name === "invalid"), "an invalid NetService is skipped");
  await other.stop({ deleteReport: true });
  t.equal(await getObject(http, reportPath(otherNode)), undefined, "stop with deleteReport removes the report");
  t.ok(netServices.hasSynced, "the shared informer is not stopped with the agent");
});

t.test("stop keeps the report unless asked to delete it", async (t) => {
  await agent.stop();
  t.ok(await getObject(http, reportPath(node)), "kept after stop()");
  const last = agentFor(node, { deleteReportOnStop: true });
  await last.start();
  await last.stop();
  t.equal(await getObject(http, reportPath(node)), undefined, "deleted by an agent created with deleteReportOnStop");
});

t.test("the program publishes its node's report, serves probes and stops cleanly on SIGTERM", async (t) => {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, "node-agent", "main.ts"), "--kubeconfig", plane.kubeconfig, "--namespace", systemNamespace, "--metrics-port", String(port)],
    { env: { ...process.env, NODE_NAME: otherNode, LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, "exit");
  t.teardown(() => void child.kill("SIGKILL"));

  const { spec } = await eventually(() => readReport(otherNode), { timeoutMs: 60_000 });
  t.same(spec.pods.map((p) => p.name), ["elsewhere"], "the report of the node named by NODE_NAME");
  const ready = await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(res.status === 200, `readyz ${res.status}`);
    return res.status;
  });
  t.equal(ready, 200, "/readyz");
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^netservice_agent_report_writes_total 1$/m, "/metrics counts the write");
  t.match(metrics, /^netservice_api_requests_total\{verb="apply",resource="netservicenodereports",code="(200|201)"\} 1$/m, "/metrics counts API requests by verb and result");
  t.match(metrics, /^netservice_agent_report_age_seconds \d/m, "/metrics has the report's age");

  child.kill("SIGTERM");
  const [code] = await exited;
  t.equal(code, 0, "exit code 0");
  t.ok(await getObject(http, reportPath(otherNode)), "the report stays");
  t.match(output, /"msg":"stopped"/, "logged its stop");
});
