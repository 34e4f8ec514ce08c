// A NetService whose spec does not parse, on a real API server. The CRD's
// schema normally refuses such a spec; here the CRD is swapped for a
// permissive one (as an older or hand-edited CRD would be) so that one gets
// stored. The aggregator then says so in the status (Ready False,
// InvalidSpec) and a Warning Event, leaves the NetService's objects exactly as
// they were even when its reports change, and goes on serving the others.
import path from "node:path";
import t from "tap";
import { Aggregator } from "../../aggregator/aggregator.ts";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients } from "../../common/kube/client.ts";
import { loadKubeConfig } from "../../common/kube/kubeconfig.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { createRootLogger } from "../../common/log.ts";
import { applyManifests, loadManifests, waitForCrd } from "../../hack/manifests.ts";
import { endpointIps, NodeReports, Published, readyCondition } from "../helpers/aggregator-fixtures.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { applyNamespaces, applyNodes, netServiceObject } from "../helpers/objects.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

const repoRoot = path.resolve(import.meta.dirname, "..", "..");
const systemNamespace = "netservice-system";
const ns = "invalid";
const wait = { timeoutMs: 60_000, intervalMs: 200 };

const plane = await startControlPlane(t);
const clients = makeClients(loadKubeConfig({ kubeconfig: plane.kubeconfig, env: {} }), { userAgent: "netservice-test/0.1.0" });
boundedTeardown(t, { name: "clients", timeoutMs: 10_000, run: () => clients.close() });
const { http } = clients;
const user = new Applier(http, { fieldManager: "netservice-test" });
const logger = createRootLogger({ env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", LOG_FORMAT: "text" }, destination: process.stderr });
const [netServiceCrd, reportCrd] = await loadManifests(path.join(repoRoot, "crds", "netservice.yaml"), path.join(repoRoot, "crds", "netservicenodereport.yaml"));
await applyManifests(user, http, [netServiceCrd!, reportCrd!]);
await applyNamespaces(user, systemNamespace, ns);
await applyNodes(user, "node-1");

const aggregator = new Aggregator(clients, {
  identity: "aggregator-a",
  systemNamespace,
  leaderElection: false,
  // The reports are written by the test, for pods that do not exist (see aggregator.test.ts).
  verifyPodPlacement: false,
  heartbeatTimeoutMs: 0,
  logger,
});
boundedTeardown(t, { name: "aggregator", timeoutMs: 30_000, run: () => aggregator.stop() });
await aggregator.start();

const reports = new NodeReports(http, systemNamespace);
const published = new Published(http, ns);
const apply = (name: string) => user.apply(netServiceObject(ns, name, { netAttachDef: "core", selector: { app: name } }));
const doomed = await apply("doomed");
const bystander = await apply("bystander");
await reports.set("node-1", doomed, [{ name: "doomed-0", addresses: ["10.10.0.1"] }]);
await reports.set("node-1", bystander, [{ name: "bystander-0", addresses: ["10.10.0.2"] }]);
for (const [name, ip] of [["doomed", "10.10.0.1"], ["bystander", "10.10.0.2"]] as const) {
  await eventually(async () => expect(endpointIps(await published.endpoints(name)).ready.includes(ip), `${name} not published yet`), wait);
}

/** resourceVersions of everything the NetService owns. */
async function ownedVersions(name: string): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  const add = (what: string, object: KubeObject | undefined) => (versions[what] = object?.metadata?.resourceVersion ?? "missing");
  add("Service", await published.service(name));
  add("template Service", await published.service(`${name}-template`));
  add("Endpoints", await published.endpoints(name));
  for (const slice of await published.slices(name)) add(`EndpointSlice ${slice.metadata?.name}`, slice);
  return versions;
}

t.test("a NetService that does not parse: InvalidSpec and a Warning, its objects left alone, the others served", async (t) => {
  const before = await ownedVersions("doomed");
  t.ok(Object.keys(before).length >= 4 && !Object.values(before).includes("missing"), `doomed owns ${Object.keys(before).join(", ")}`);

  // A CRD without a schema, as one installed by hand or from an older release might be.
  const permissive = structuredClone(netServiceCrd!) as KubeObject & { spec: { versions: { schema?: unknown }[] } };
  for (const version of permissive.spec.versions) version.schema = { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } };
  await user.apply(permissive);
  await waitForCrd(http, permissive.metadata!.name!);
  await http.request({
    method: "PATCH",
    path: `/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${ns}/netservices/doomed`,
    contentType: "application/merge-patch+json",
    body: { spec: { selector: "app=doomed", ports: [{ port: 0 }] } },
  });

  const condition = await eventually(async () => {
    const ready = readyCondition(await published.netService("doomed"));
    expect(ready?.reason === "InvalidSpec", `Ready: ${JSON.stringify(ready)}`);
    return ready!;
  }, wait);
  t.equal(condition.status, "False");
  t.match(condition.message, /does not parse .*selector.*its objects are left as they are; correct the spec/, `the message says what and what to do: ${condition.message}`);
  const events = await eventually(async () => {
    const found = (await published.events("doomed")).filter((event) => event.reason === "InvalidSpec");
    expect(found.length > 0, "no InvalidSpec Event yet");
    return found;
  }, wait);
  t.equal(events[0]?.type, "Warning", "a Warning Event says it too");

  // Its node now reports another address: with a spec that does not parse, nothing of it may change.
  await reports.set("node-1", await published.netService("doomed") as KubeObject, [{ name: "doomed-0", addresses: ["10.10.0.9"] }]);
  // The bystander's report changes as well, and the bystander follows it: the aggregator is not stuck on doomed.
  await reports.set("node-1", bystander, [{ name: "bystander-0", addresses: ["10.10.0.3"] }]);
  await eventually(async () => {
    const ips = endpointIps(await published.endpoints("bystander")).ready;
    expect(ips.length === 1 && ips[0] === "10.10.0.3", `bystander: ${ips}`);
  }, wait);
  t.pass("another NetService is still served");
  t.same(await ownedVersions("doomed"), before, "not one of doomed's objects was written");
  t.same(endpointIps(await published.endpoints("doomed")).ready, ["10.10.0.1"], "doomed's Endpoints keep what they had");
});
