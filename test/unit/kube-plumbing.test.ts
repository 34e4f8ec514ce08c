// The pure parts of common/kube and common/log. What talks to an API server
// is tested against a real one in test/integration.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { Backoff } from "../../common/kube/backoff.ts";
import { loadKubeConfig } from "../../common/kube/kubeconfig.ts";
import { describeRequest, isGone, isNotFound, KubeApiError, statusCode } from "../../common/kube/http.ts";
import { diffRelist } from "../../common/kube/informer.ts";
import { type KubeObject, objectKey, splitKey, stripManagedFields } from "../../common/kube/object.ts";
import { resourcePath } from "../../common/kube/resources.ts";
import { createRootLogger, reconcileLogger } from "../../common/log.ts";
import { tempDir } from "../helpers/temp-dir.ts";

const pod = (name: string, resourceVersion: string, namespace = "default"): KubeObject => ({
  metadata: { name, namespace, resourceVersion },
});

t.test("a relist replaces the cache and reports only what changed", async (t) => {
  const previous = new Map([
    ["default/kept", pod("kept", "1")],
    ["default/changed", pod("changed", "2")],
    ["default/vanished", pod("vanished", "3")],
  ]);
  const { cache, events } = diffRelist(previous, [pod("kept", "1"), pod("changed", "7"), pod("new", "8")]);
  t.same([...cache.keys()].sort(), ["default/changed", "default/kept", "default/new"]);
  t.same(
    events.map((e) => [e.type, e.key, e.object.metadata?.resourceVersion]),
    [
      ["update", "default/changed", "7"],
      ["add", "default/new", "8"],
      ["delete", "default/vanished", "3"],
    ],
    "no event for the unchanged object; the delete carries the last known state",
  );
  const update = events[0];
  t.equal(update?.type === "update" ? update.old.metadata?.resourceVersion : undefined, "2", "an update carries the old object");
  t.same(diffRelist(new Map(), []).events, [], "an empty relist of an empty cache changes nothing");
});

t.test("object keys are namespace/name, or name when cluster-scoped", async (t) => {
  t.equal(objectKey(pod("a", "1", "ns")), "ns/a");
  t.equal(objectKey({ metadata: { name: "node-1" } }), "node-1");
  t.same(splitKey("ns/a"), { namespace: "ns", name: "a" });
  t.same(splitKey("node-1"), { name: "node-1" });
  t.throws(() => objectKey({ kind: "Pod", metadata: {} }), /no metadata.name/);
  const stripped = stripManagedFields({ metadata: { name: "a", managedFields: [{ manager: "kubectl" }] } });
  t.same(stripped, { metadata: { name: "a" } });
});

t.test("resource paths for core, grouped, namespaced, cluster-scoped and subresources", async (t) => {
  t.equal(resourcePath({ apiVersion: "v1", plural: "pods" }), "/api/v1/pods");
  t.equal(resourcePath({ apiVersion: "v1", plural: "pods", namespace: "default" }), "/api/v1/namespaces/default/pods");
  t.equal(
    resourcePath({ apiVersion: "svcctl.metaswitch.com/v1alpha1", plural: "netservices", namespace: "ns", name: "corens", subresource: "status" }),
    "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/ns/netservices/corens/status",
  );
  t.equal(resourcePath({ apiVersion: "v1", plural: "nodes", name: "node-1" }), "/api/v1/nodes/node-1");
});

t.test("requests are counted by Kubernetes verb and resource", async (t) => {
  const base = "https://127.0.0.1:6443";
  const table: [method: string, path: string, contentType: string | undefined, verb: string, resource: string][] = [
    ["GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", undefined, "list", "pods"],
    ["GET", "/api/v1/pods?watch=true&resourceVersion=5", undefined, "watch", "pods"],
    ["GET", "/api/v1/namespaces/default/pods/utils-0", undefined, "get", "pods"],
    ["GET", "/api/v1/namespaces/default", undefined, "get", "namespaces"],
    ["PUT", "/api/v1/namespaces/kube-system/finalize", undefined, "update", "namespaces/finalize"],
    ["PATCH", "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices/s", "application/apply-patch+yaml", "apply", "endpointslices"],
    ["PATCH", "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/ns/netservices/n/status", "application/apply-patch+yaml", "apply", "netservices/status"],
    ["PATCH", "/api/v1/namespaces/ns/services/s", "application/merge-patch+json", "patch", "services"],
    ["POST", "/apis/coordination.k8s.io/v1/namespaces/ns/leases", "application/json", "create", "leases"],
    ["PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", "application/json", "update", "leases"],
    ["DELETE", "/api/v1/namespaces/ns/endpoints/e", undefined, "delete", "endpoints"],
    ["DELETE", "/api/v1/namespaces/ns/endpoints", undefined, "deletecollection", "endpoints"],
    ["GET", "/apis/svcctl.metaswitch.com/v1alpha1", undefined, "list", ""],
  ];
  for (const [method, path, contentType, verb, resource] of table) {
    t.same(describeRequest(method, new URL(path, base), contentType), { verb, resource }, `${method} ${path}`);
  }
});

t.test("API errors carry the code and the Status message whichever client raised them", async (t) => {
  const status = { kind: "Status", status: "Failure", reason: "Expired", code: 410, message: "too old resource version: 5 (99)" };
  const err = new KubeApiError("GET", "/api/v1/pods", 410, JSON.stringify(status));
  t.equal(err.code, 410);
  t.equal(err.reason, "Expired");
  t.match(err.message, /GET \/api\/v1\/pods: 410 Expired: too old resource version/);
  t.ok(isGone(err));
  t.ok(isNotFound({ code: 404, body: "" }), "client-node's ApiException has a numeric code too");
  t.equal(statusCode(new Error("ECONNREFUSED")), undefined);
  t.match(new KubeApiError("GET", "/x", 502, "<html>bad gateway</html>").message, /502: <html>bad gateway/);
});

t.test("retry delays double up to the cap, with jitter only below it", async (t) => {
  const fixed = new Backoff({ initialMs: 800, maxMs: 30_000, jitter: 0 });
  t.same(Array.from({ length: 8 }, () => fixed.next()), [800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
  fixed.reset();
  t.equal(fixed.next(), 800);
  const jittered = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.2, random: () => 0.5 });
  t.equal(jittered.next(), 900);
  t.throws(() => new Backoff({ initialMs: 0, maxMs: 10 }));
});

t.test("kubeconfig: explicit path, then KUBECONFIG, else a message that says what to do", async (t) => {
  const dir = tempDir(t, "kubeconfig-");
  const write = (name: string, server: string) => {
    const file = join(dir, name);
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: name, cluster: { server } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "c", context: { cluster: name, user: "u" } }],
        "current-context": "c",
      }),
    );
    return file;
  };
  const explicit = write("explicit", "https://explicit:6443");
  const fromEnv = write("env", "https://env:6443");
  const noHome = { HOME: join(dir, "nowhere") };
  t.equal(loadKubeConfig({ kubeconfig: explicit, env: { ...noHome, KUBECONFIG: fromEnv } }).getCurrentCluster()?.server, "https://explicit:6443");
  t.equal(loadKubeConfig({ env: { ...noHome, KUBECONFIG: fromEnv } }).getCurrentCluster()?.server, "https://env:6443");
  t.equal(
    loadKubeConfig({ env: { ...noHome, KUBECONFIG: `${join(dir, "missing")}:${fromEnv}` } }).getCurrentCluster()?.server,
    "https://env:6443",
    "missing entries of a KUBECONFIG list are skipped, as kubectl does",
  );
  t.throws(() => loadKubeConfig({ kubeconfig: join(dir, "missing") }), /does not exist/);
  t.throws(() => loadKubeConfig({ env: noHome }), /pass --kubeconfig PATH, set KUBECONFIG/);
});

t.test("logs: JSON by default, readable text on request, bad settings refused at start-up", async (t) => {
  const lines: string[] = [];
  const destination = { write: (line: string) => void lines.push(line) };
  const json = createRootLogger({ env: {}, destination });
  reconcileLogger(json.child({ name: "aggregator" }), "ns/corens").info({ slices: 2 }, "reconciled");
  const entry = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
  t.match(entry, { level: "info", name: "aggregator", key: "ns/corens", slices: 2, msg: "reconciled" });
  t.match(entry.reconcileId, /^[0-9a-f]{8}$/);

  const text = createRootLogger({ env: { LOG_FORMAT: "text", LOG_LEVEL: "debug" }, destination });
  text.debug({ key: "ns/a" }, "queued");
  t.match(lines[1], /^\S+ DEBUG queued key=ns\/a\n$/);
  text.error({ err: new Error("boom") }, "failed");
  t.match(lines[2], /ERROR failed[^\n]*\n {4}Error: boom\n +at /);

  t.throws(() => createRootLogger({ env: { LOG_LEVEL: "verbose" } }), /LOG_LEVEL=verbose is not a log level/);
  t.throws(() => createRootLogger({ env: { LOG_FORMAT: "yaml" } }), /LOG_FORMAT=yaml/);
});
