// The Helm chart's life cycle on a real API server, as deploy/helm/netservice/
// README.md describes it: `helm install --create-namespace` into a namespace
// that does not exist yet, an upgrade, and an uninstall that leaves the CRDs,
// every NetService and the namespace, after which the same release installs
// again and takes them back. Nothing runs the workloads here (no kubelet);
// hack/kind/e2e.sh runs them (test/kind/helm.test.ts).
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { parseAllDocuments } from "yaml";
import { Applier } from "../../common/kube/apply.ts";
import { KubeApiError } from "../../common/kube/http.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { ResourceResolver } from "../../common/kube/resources.ts";
import { ensureHelm, repoRoot } from "../../hack/cluster/binaries.ts";
import { clientsFor } from "../../hack/credentials.ts";
import { waitForCrd } from "../../hack/manifests.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

const run = promisify(execFile);
const chart = path.join(repoRoot, "deploy", "helm", "netservice");
const namespace = "netservice-system";
const release = "netservice";
const crds = ["netservices.svcctl.metaswitch.com", "netservicenodereports.svcctl.metaswitch.com"];

const helmBinary = await ensureHelm((line) => t.comment(line));
const plane = await startControlPlane(t);
const clients = clientsFor(plane.kubeconfig);
boundedTeardown(t, { name: "clients", timeoutMs: 10_000, run: () => clients.close() });
const resolver = new ResourceResolver(clients.http);
const helm = async (...args: string[]) =>
  (await run(helmBinary, [...args, "--namespace", namespace, "--kubeconfig", plane.kubeconfig], { maxBuffer: 64 * 1024 * 1024 })).stdout;

/** The objects of the release's current manifest. */
async function manifest(): Promise<KubeObject[]> {
  return parseAllDocuments(await helm("get", "manifest", release)).map((d) => d.toJS() as KubeObject | null).filter((o): o is KubeObject => o !== null);
}

async function get<T extends KubeObject = KubeObject>(object: KubeObject): Promise<T | undefined> {
  try {
    return await clients.http.request<T>({ method: "GET", path: await resolver.pathOf(object) });
  } catch (error) {
    if (error instanceof KubeApiError && error.code === 404) return undefined;
    throw error;
  }
}

const namespaceObject: KubeObject = { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } };
const crdObject = (name: string): KubeObject => ({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name } });
const netService: KubeObject = {
  apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService",
  metadata: { name: "corens", namespace: "default" },
  spec: { netAttachDef: "core", selector: { app: "utils" } },
};

t.test("helm install --create-namespace makes every object of the chart, the namespace labelled restricted", async (t) => {
  await helm("install", release, chart, "--create-namespace");
  const objects = await manifest();
  t.ok(objects.length >= 20, `${objects.length} objects in the release`);
  for (const object of objects) t.ok((await get(object))?.metadata?.uid, `${object.kind}/${object.metadata?.name} exists`);
  const stored = await get(namespaceObject);
  t.match(stored?.metadata?.labels, { "pod-security.kubernetes.io/enforce": "restricted", "app.kubernetes.io/managed-by": "Helm" });
  for (const name of crds) await waitForCrd(clients.http, name);
  await new Applier(clients.http, { fieldManager: "a-user" }).apply(netService);
});

t.test("helm upgrade changes the pod template", async (t) => {
  await helm("upgrade", release, chart, "--reuse-values", "--set", "logLevel=debug");
  const daemonSet = await get<KubeObject & { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }>(
    { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "netservice-agent", namespace } },
  );
  t.strictSame(daemonSet?.spec.template.spec.containers[0]!.env.find((e) => e.name === "LOG_LEVEL"), { name: "LOG_LEVEL", value: "debug" });
  const history = JSON.parse(await helm("history", release, "--output", "json")) as { revision: number; status: string }[];
  t.strictSame(history.map((h) => [h.revision, h.status]), [[1, "superseded"], [2, "deployed"]]);
});

t.test("helm uninstall leaves the CRDs, the NetServices and the namespace, and removes everything else", async (t) => {
  const objects = await manifest();
  await helm("uninstall", release, "--wait", "--timeout", "2m");
  for (const name of crds) t.ok(await get(crdObject(name)), `CRD ${name} kept`);
  t.ok(await get(netService), "NetService default/corens kept");
  t.notOk((await get(namespaceObject))?.metadata?.deletionTimestamp, "the namespace kept");
  for (const object of objects.filter((o) => o.kind !== "CustomResourceDefinition" && o.kind !== "Namespace")) {
    await eventually(async () => {
      const stored = await get(object);
      expect(!stored || stored.metadata?.deletionTimestamp !== undefined, `${object.kind}/${object.metadata?.name} still there`);
    }, { timeoutMs: 60_000 });
  }
  t.pass("every other object gone or going");
});

t.test("installing the release again takes the kept CRDs and namespace back", async (t) => {
  await helm("install", release, chart, "--create-namespace");
  for (const object of [...crds.map(crdObject), namespaceObject]) {
    const stored = await get(object);
    t.equal(stored?.metadata?.annotations?.["meta.helm.sh/release-name"], release, `${object.kind}/${object.metadata?.name} in the release`);
  }
  t.ok(await get(netService), "NetService default/corens still there");
  t.equal(JSON.parse(await helm("status", release, "--output", "json")).info.status, "deployed");
});
