// The cheapest way for an agent to write its node's report (issue 13): four
// ways of writing the same change, measured side by side on a local control
// plane. Each write flips one pod's readiness in a report built by the
// agent's own code (buildNodeReport, reportObject) and sets a new
// triggerTime, as the agent's writes do; then it waits until a watch on the
// reports, in this process with clients of its own, delivers the written
// revision. The ways, each on a report object of its own (so each object's
// managedFields are those of its one way), in turn:
//
//   apply        server-side apply of the whole object, field manager netservice-agent, force (the agent today)
//   merge patch  a JSON merge patch of what changed in spec (the pods list whole: lists are replaced whole)
//   json patch   an RFC 6902 patch of the changed fields only, after a test of metadata.resourceVersion
//   update       a PUT of the whole object with its resourceVersion
//
// at two report sizes (the quick preset's: 10 pods on the node, 5
// NetServices; and the kubelet's default maximum of 110 pods), round-robin
// (apply, merge patch, json patch, update of one size, the same of the
// other, then the ConfigMap floor: a PUT of a small ConfigMap and its watch
// event, as the benchmark's floor). Prints a table per size: median and p90
// of the time to the response and to the watch event, the request body's
// bytes, and each way's medians over apply's.
//
//   nice -n 5 node hack/bench/report-write.ts
//   node hack/bench/report-write.ts --writes=50 --warmup=5 --sizes=10,110,500
import { randomUUID } from "node:crypto";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { V1Pod } from "@kubernetes/client-node";
import { agentFieldManager, annotations, apiVersion, defaultSystemNamespace, netServiceSchema, reportPlural, type NetService, type ReportSpec } from "../../common/api.ts";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients, type KubeClients } from "../../common/kube/client.ts";
import type { KubeHttp } from "../../common/kube/http.ts";
import { Informer } from "../../common/kube/informer.ts";
import { loadKubeConfig } from "../../common/kube/kubeconfig.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { ResourceResolver } from "../../common/kube/resources.ts";
import { jsonEqual } from "../../common/json-equal.ts";
import { buildNodeReport } from "../../common/node-report.ts";
import { reportObject } from "../../node-agent/report-object.ts";
import { ControlPlane } from "../cluster/control-plane.ts";
import { crdFiles } from "../local-system.ts";
import { applyManifests, loadManifests } from "../manifests.ts";
import { formatNetworkStatus, macAddress } from "../sim/network-status.ts";
import { summarise } from "./latency.ts";
import { benchNetwork, netServiceManifest } from "./workload.ts";

export const methods = ["apply", "merge patch", "json patch", "update"] as const;
export type Method = (typeof methods)[number];

export type JsonPatchOp =
  | { op: "test" | "add" | "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

/**
 * An RFC 6902 patch that turns `before` into `after`, field by field: objects
 * and lists of equal length are compared member by member, a list whose
 * length changed is replaced whole.
 */
export function jsonPatchOf(before: unknown, after: unknown, path = ""): JsonPatchOp[] {
  if (jsonEqual(before, after)) return [];
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((item, index) => jsonPatchOf(item, after[index], `${path}/${index}`));
  }
  if (isPlainObject(before) && isPlainObject(after)) {
    const removed = Object.keys(before).filter((key) => !(key in after));
    return [
      ...removed.map((key): JsonPatchOp => ({ op: "remove", path: `${path}/${pointerToken(key)}` })),
      ...Object.keys(after).flatMap((key): JsonPatchOp[] =>
        key in before
          ? jsonPatchOf(before[key], after[key], `${path}/${pointerToken(key)}`)
          : [{ op: "add", path: `${path}/${pointerToken(key)}`, value: after[key] }],
      ),
    ];
  }
  return [{ op: "replace", path, value: after }];
}

/** An RFC 7386 merge patch that turns `before` into `after`: changed lists and values whole, removed keys as null. */
export function mergePatchOf(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (jsonEqual(old, value)) continue;
    patch[key] = isPlainObject(old) && isPlainObject(value) ? mergePatchOf(old, value) : value;
  }
  return patch;
}

/**
 * The pods of one node as the agent's informer holds them: each selected by
 * one of `netServices` NetServices in turn, attached to the benchmark's
 * network with an address there and one on the cluster network, Running and
 * Ready, with the names, labels and annotations the benchmark gives its pods.
 */
export function nodePods(nodeName: string, count: number, netServices: readonly NetService[]): V1Pod[] {
  return Array.from({ length: count }, (_, i): V1Pod => {
    const uid = randomUUID();
    const podIp = `10.244.0.${10 + (i % 240)}`;
    const accessIp = `10.20.${Math.floor(i / 240)}.${10 + (i % 240)}`;
    const netService = netServices[i % netServices.length]!;
    return {
      metadata: {
        name: `bench-${i}`,
        namespace: netService.metadata.namespace,
        uid,
        labels: netService.spec.selector,
        annotations: {
          [annotations.networksRequest]: JSON.stringify([{ name: benchNetwork.name, namespace: benchNetwork.namespace, interface: "net1" }]),
          [annotations.networkStatus]: formatNetworkStatus([
            { name: "kindnet", interface: "eth0", ips: [podIp], mac: macAddress(`${uid}/eth0`), default: true, dns: {} },
            { name: `${benchNetwork.namespace}/${benchNetwork.name}`, interface: "net1", ips: [accessIp], mac: macAddress(`${uid}/net1`), dns: {} },
          ]),
        },
      },
      spec: { nodeName, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
      status: { phase: "Running", podIP: podIp, podIPs: [{ ip: podIp }], conditions: [{ type: "Ready", status: "True" }] },
    };
  });
}

/** The pod's Ready condition turned over, as the kubelet writes it. */
export function flipReadiness(pod: V1Pod): V1Pod {
  const ready = pod.status?.conditions?.find((condition) => condition.type === "Ready")?.status === "True";
  return { ...pod, status: { ...pod.status, conditions: [{ type: "Ready", status: ready ? "False" : "True" }] } };
}

type Sample = { responseMs: number; watchMs: number; bytes: number };

/** Remembers when each resourceVersion was delivered by a watch, and waits for one. */
class RevisionWatch {
  readonly #arrived = new Map<string, number>();
  readonly #waiting = new Map<string, (at: number) => void>();

  seen(resourceVersion: string): void {
    const at = performance.now();
    const waiter = this.#waiting.get(resourceVersion);
    if (waiter) {
      this.#waiting.delete(resourceVersion);
      waiter(at);
    } else {
      this.#arrived.set(resourceVersion, at);
    }
  }

  /** When the watch delivered resourceVersion; rejects after timeoutMs. */
  arrival(resourceVersion: string, timeoutMs = 60_000): Promise<number> {
    const at = this.#arrived.get(resourceVersion);
    if (at !== undefined) {
      this.#arrived.delete(resourceVersion);
      return Promise.resolve(at);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(resourceVersion);
        reject(new Error(`no watch event of resourceVersion ${resourceVersion} after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(resourceVersion, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

type ReportWriterInit = {
  http: KubeHttp;
  resolver: ResourceResolver;
  revisions: RevisionWatch;
  method: Method;
  nodeName: string;
  nodeUid: string;
  pods: V1Pod[];
  netServices: NetService[];
};

/** One report object written by one method; each write flips the next pod's readiness. */
class ReportWriter {
  readonly method: Method;
  readonly #init: ReportWriterInit;
  readonly #applier: Applier;
  readonly #pods: V1Pod[];
  #stored: KubeObject | undefined;
  #flips = 0;

  constructor(init: ReportWriterInit) {
    this.#init = init;
    this.method = init.method;
    this.#pods = [...init.pods];
    this.#applier = new Applier(init.http, { fieldManager: agentFieldManager }, init.resolver);
  }

  get podCount(): number {
    return this.#pods.length;
  }

  /** The report as its method first writes it: apply creates with an apply, the others with a create (so their managedFields hold no apply). */
  async create(): Promise<void> {
    const object = this.#desired();
    this.#stored = this.method === "apply" ? await this.#applier.apply(object) : await this.#applier.create(object);
  }

  wholeObjectBytes(): number {
    return Buffer.byteLength(JSON.stringify(this.#desired()));
  }

  async write(): Promise<Sample> {
    const index = this.#flips++ % this.#pods.length;
    this.#pods[index] = flipReadiness(this.#pods[index]!);
    const desired = this.#desired();
    const stored = this.#stored!;
    const request = await this.#request(desired, stored);
    const bytes = Buffer.byteLength(JSON.stringify(request.body));
    const startedAt = performance.now();
    const written = await request.send();
    const answeredAt = performance.now();
    const watchedAt = await this.#init.revisions.arrival(written.metadata?.resourceVersion ?? "");
    if (!jsonEqual(written.spec, desired.spec)) {
      throw new Error(`${this.method} of ${this.#init.nodeName} stored another spec than the one meant`);
    }
    this.#stored = written;
    return { responseMs: answeredAt - startedAt, watchMs: watchedAt - startedAt, bytes };
  }

  #desired(): KubeObject {
    const spec: ReportSpec = { ...buildNodeReport(this.#init.nodeName, this.#pods, this.#init.netServices), triggerTime: new Date().toISOString() };
    return reportObject(this.#init.nodeName, defaultSystemNamespace, spec, 0, this.#init.nodeUid);
  }

  async #request(desired: KubeObject, stored: KubeObject): Promise<{ body: unknown; send: () => Promise<KubeObject> }> {
    const { http } = this.#init;
    const path = await this.#init.resolver.pathOf(desired);
    const query = { fieldManager: agentFieldManager };
    const resourceVersion = stored.metadata?.resourceVersion;
    switch (this.method) {
      case "apply":
        return { body: desired, send: () => this.#applier.apply(desired) };
      case "merge patch": {
        const body = { spec: mergePatchOf(stored.spec as Record<string, unknown>, desired.spec as Record<string, unknown>) };
        return { body, send: () => this.#applier.mergePatch(desired, body) };
      }
      case "json patch": {
        const body = [{ op: "test", path: "/metadata/resourceVersion", value: resourceVersion }, ...jsonPatchOf(stored.spec, desired.spec, "/spec")];
        return { body, send: () => http.request({ method: "PATCH", path, query, contentType: "application/json-patch+json", body }) };
      }
      case "update": {
        const body = { ...desired, metadata: { ...desired.metadata, resourceVersion } };
        return { body, send: () => http.request({ method: "PUT", path, query, body }) };
      }
    }
  }
}

const floorLabel = "report-write.svcctl.metaswitch.com/floor";

/** The benchmark's ConfigMap floor: a small ConfigMap replaced with a new value, and its watch event. */
class ConfigMapFloor {
  readonly #http: KubeHttp;
  readonly #revisions: RevisionWatch;
  readonly #path = `/api/v1/namespaces/${defaultSystemNamespace}/configmaps`;
  #seq = 0;

  constructor(http: KubeHttp, revisions: RevisionWatch) {
    this.#http = http;
    this.#revisions = revisions;
  }

  async create(): Promise<void> {
    await this.#http.request({ method: "POST", path: this.#path, body: this.#body() });
  }

  async write(): Promise<Sample> {
    this.#seq++;
    const body = this.#body();
    const startedAt = performance.now();
    const written = await this.#http.request<KubeObject>({ method: "PUT", path: `${this.#path}/report-write-floor`, body });
    const answeredAt = performance.now();
    const watchedAt = await this.#revisions.arrival(written.metadata?.resourceVersion ?? "");
    return { responseMs: answeredAt - startedAt, watchMs: watchedAt - startedAt, bytes: Buffer.byteLength(JSON.stringify(body)) };
  }

  #body() {
    return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "report-write-floor", namespace: defaultSystemNamespace, labels: { [floorLabel]: "true" } }, data: { seq: String(this.#seq) } };
  }
}

function resultTable(input: {
  sizes: number[];
  writers: ReportWriter[];
  floor: ConfigMapFloor;
  samples: Map<ReportWriter | ConfigMapFloor, Sample[]>;
  loadAtStart: number[];
  loadAtEnd: number[];
  writes: number;
}): string {
  const ms = (n: number) => n.toFixed(1);
  const ratio = (n: number) => n.toFixed(2);
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(" ");
  const floor = input.samples.get(input.floor)!;
  const floorResponse = summarise(floor.map((s) => s.responseMs));
  const floorWatch = summarise(floor.map((s) => s.watchMs));
  const lines = [
    `load average (1, 5, 15 min): at start ${load(input.loadAtStart)}, at end ${load(input.loadAtEnd)}; ${input.writes} measured writes per row`,
    "",
    "| pods | method | response p50 / p90 (ms) | to watch p50 / p90 (ms) | body bytes | response p50 / apply's | to watch p50 / apply's | to watch p50 in floors |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const pods of input.sizes) {
    const ofSize = input.writers.filter((w) => w.podCount === pods);
    const figures = ofSize.map((w) => {
      const samples = input.samples.get(w)!;
      return { method: w.method, response: summarise(samples.map((s) => s.responseMs)), watch: summarise(samples.map((s) => s.watchMs)), bytes: summarise(samples.map((s) => s.bytes)).p50Ms };
    });
    const apply = figures.find((f) => f.method === "apply")!;
    for (const f of figures) {
      lines.push(`| ${pods} | ${f.method} | ${ms(f.response.p50Ms)} / ${ms(f.response.p90Ms)} | ${ms(f.watch.p50Ms)} / ${ms(f.watch.p90Ms)} | ${f.bytes} | ${ratio(f.response.p50Ms / apply.response.p50Ms)} | ${ratio(f.watch.p50Ms / apply.watch.p50Ms)} | ${ratio(f.watch.p50Ms / floorWatch.p50Ms)} |`);
    }
  }
  lines.push(`| - | ConfigMap floor (PUT) | ${ms(floorResponse.p50Ms)} / ${ms(floorResponse.p90Ms)} | ${ms(floorWatch.p50Ms)} / ${ms(floorWatch.p90Ms)} | ${summarise(floor.map((s) => s.bytes)).p50Ms} | - | - | 1.00 |`);
  return `${lines.join("\n")}\n`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** RFC 6901: `~` and `/` in a key are escaped. */
function pointerToken(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: {
      writes: { type: "string", default: "200" },
      warmup: { type: "string", default: "20" },
      sizes: { type: "string", default: "10,110" },
      netservices: { type: "string", default: "5" },
    },
  });
  const writes = Number(args.writes);
  const warmup = Number(args.warmup);
  const sizes = args.sizes.split(",").map(Number);
  const netServiceCount = Number(args.netservices);
  const say = (line: string) => process.stderr.write(`[report-write] ${line}\n`);

  const loadAtStart = os.loadavg();
  const plane = await ControlPlane.start({ report: say });
  const opened: KubeClients[] = [];
  const informers: Informer[] = [];
  try {
    const access = loadKubeConfig({ kubeconfig: plane.kubeconfig });
    const writer = makeClients(access, { userAgent: "netservice-agent/0.1.0" });
    const watcher = makeClients(access, { userAgent: "netservice-report-write-watch/0.1.0" });
    opened.push(writer, watcher);
    const setup = new Applier(writer.http, { fieldManager: "netservice-report-write" });
    await applyManifests(setup, writer.http, [
      ...(await loadManifests(...crdFiles)),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: defaultSystemNamespace } },
    ]);

    const revisions = new RevisionWatch();
    const reports = new Informer({ http: watcher.http, path: `/apis/${apiVersion}/namespaces/${defaultSystemNamespace}/${reportPlural}` });
    const configMaps = new Informer({ http: watcher.http, path: `/api/v1/namespaces/${defaultSystemNamespace}/configmaps`, labelSelector: `${floorLabel}=true` });
    for (const informer of [reports, configMaps]) {
      informer.onChange((event) => event.type !== "delete" && revisions.seen(event.object.metadata?.resourceVersion ?? ""));
      informers.push(informer.start());
    }
    await Promise.all(informers.map((informer) => informer.synced));

    const netServices = Array.from({ length: netServiceCount }, (_, i) => {
      const manifest = netServiceManifest("bench", i);
      return netServiceSchema.parse({ ...manifest, metadata: { ...manifest.metadata, uid: randomUUID(), generation: 1 } });
    });
    const resolver = new ResourceResolver(writer.http);
    const writers: ReportWriter[] = [];
    for (const pods of sizes) {
      for (const method of methods) {
        const nodeName = `report-write-${pods}-${method.replace(" ", "-")}`;
        const node = await writer.http.request<KubeObject>({ method: "POST", path: "/api/v1/nodes", body: { apiVersion: "v1", kind: "Node", metadata: { name: nodeName } } });
        const reportWriter = new ReportWriter({ http: writer.http, resolver, revisions, method, nodeName, nodeUid: node.metadata!.uid!, pods: nodePods(nodeName, pods, netServices), netServices });
        await reportWriter.create();
        writers.push(reportWriter);
      }
    }
    const floor = new ConfigMapFloor(writer.http, revisions);
    await floor.create();

    say(`report bodies (apply): ${writers.filter((w) => w.method === "apply").map((w) => `${w.podCount} pods ${w.wholeObjectBytes()} bytes`).join(", ")}`);
    say(`${warmup} warm-up rounds, then ${writes} measured rounds of ${writers.length + 1} writes`);
    const samples = new Map<ReportWriter | ConfigMapFloor, Sample[]>([...writers, floor].map((w) => [w, []]));
    for (let round = 0; round < warmup + writes; round++) {
      for (const w of [...writers, floor]) {
        const sample = await w.write();
        if (round >= warmup) samples.get(w)!.push(sample);
      }
      if ((round + 1) % 50 === 0) say(`round ${round + 1} of ${warmup + writes}`);
    }
    const loadAtEnd = os.loadavg();
    process.stdout.write(resultTable({ sizes, writers, floor, samples, loadAtStart, loadAtEnd, writes }));
  } finally {
    await Promise.all(informers.map((informer) => informer.stop()));
    await Promise.all(opened.map((clients) => clients.close()));
    await plane.stop();
  }
}
