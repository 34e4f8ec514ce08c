// The harness's eyes, in a worker thread of their own so that the time a
// watch event arrives is taken at once, not after whatever JavaScript the
// in-process node agents and simulation run in the main thread. Watches our
// EndpointSlices and Endpoints, kube-controller-manager's EndpointSlices and
// the floor's ConfigMap in the benchmark's namespace, and the node reports
// (our first hop), and posts to the main thread each pod whose view on a side
// changed, and each floor value seen, with Date.now() at arrival. The floor
// has two probes: a plain ConfigMap, and a custom resource the size of a node
// report (a NetServiceNodeReport in the benchmark's namespace, where no agent
// or aggregator looks).
//
//   const observer = startObserver({ kubeconfig, namespace });
//   observer.onMessage((message) => ...);   // ObserverMessage
//   await observer.synced;  ...  await observer.stop();
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { KubeConfig } from "@kubernetes/client-node";
import { apiVersion, defaultSystemNamespace, labels, reportPlural, sliceManagedBy } from "../../common/api.ts";
import { makeClients } from "../../common/kube/client.ts";
import { Informer } from "../../common/kube/informer.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { createRootLogger } from "../../common/log.ts";
import type { Side } from "./latency.ts";
import {
  entriesOfEndpoints,
  entriesOfReport,
  entriesOfSlice,
  PodViews,
  type EndpointsJson,
  type PodEntry,
  type PodView,
  type ReportJson,
  type SliceJson,
} from "./pod-views.ts";

export const floorLabel = "bench.svcctl.metaswitch.com/floor";
/** The report floor's sequence number (its spec is a copy of a real report's). */
export const floorSeqAnnotation = "bench.svcctl.metaswitch.com/seq";
export const floorProbes = ["configmap", "report"] as const;
export type FloorProbe = (typeof floorProbes)[number];
export const kubeSliceManagedBy = "endpointslice-controller.k8s.io";

export type ObserverMessage =
  | { type: "synced" }
  | { type: "pod"; side: Side; uid: string; view: PodView; at: number }
  | { type: "floor"; probe: FloorProbe; seq: number; at: number }
  /** One more revision of an object on a side (what every watcher of that API receives). */
  | { type: "revision"; side: Side; at: number }
  | { type: "stopped" };

type ObserverData = { kubeconfig: string; namespace: string };

export type Observer = {
  readonly synced: Promise<void>;
  onMessage(handler: (message: ObserverMessage) => void): void;
  stop(): Promise<void>;
};

export function startObserver(data: ObserverData): Observer {
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  const handlers: ((message: ObserverMessage) => void)[] = [];
  let resolveSynced: () => void = () => {};
  let rejectSynced: (err: Error) => void = () => {};
  const synced = new Promise<void>((resolve, reject) => {
    resolveSynced = resolve;
    rejectSynced = reject;
  });
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  worker.on("message", (message: ObserverMessage) => {
    if (message.type === "synced") resolveSynced();
    if (message.type === "stopped") resolveStopped();
    for (const handler of handlers) handler(message);
  });
  worker.on("error", (err) => rejectSynced(err));
  worker.on("exit", () => {
    rejectSynced(new Error("the observer thread exited before its watches synced"));
    resolveStopped();
  });
  return {
    synced,
    onMessage: (handler) => handlers.push(handler),
    async stop() {
      worker.postMessage({ type: "stop" });
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      await worker.terminate();
    },
  };
}

async function runObserver(data: ObserverData) {
  const port = parentPort;
  if (!port) return;
  const post = (message: ObserverMessage) => port.postMessage(message);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(data.kubeconfig);
  const clients = makeClients(kubeConfig, { userAgent: "netservice-bench-observer/0.1.0" });
  const logger = createRootLogger({ env: { LOG_LEVEL: "warn", LOG_FORMAT: "text" }, destination: process.stderr });
  const slicesPath = `/apis/discovery.k8s.io/v1/namespaces/${data.namespace}/endpointslices`;
  const common = { http: clients.http, logger };
  const slice = (obj: KubeObject) => entriesOfSlice(obj as SliceJson);
  const endpoints = (obj: KubeObject) => entriesOfEndpoints(obj as EndpointsJson);
  const report = (obj: KubeObject) => entriesOfReport(obj as ReportJson);
  const watched: [Side, Informer, (obj: KubeObject) => Map<string, PodEntry>][] = [
    ["slices", new Informer({ ...common, path: slicesPath, labelSelector: `${labels.managedBy}=${sliceManagedBy}` }), slice],
    ["kube", new Informer({ ...common, path: slicesPath, labelSelector: `${labels.managedBy}=${kubeSliceManagedBy}` }), slice],
    [
      "endpoints",
      new Informer({ ...common, path: `/api/v1/namespaces/${data.namespace}/endpoints`, labelSelector: `${labels.netService},${labels.skipMirror}=true` }),
      endpoints,
    ],
    ["reports", new Informer({ ...common, path: `/apis/${apiVersion}/namespaces/${defaultSystemNamespace}/${reportPlural}` }), report],
  ];
  for (const [side, informer, entriesOf] of watched) {
    const views = new PodViews();
    informer.onChange((event) => {
      const at = Date.now();
      post({ type: "revision", side, at });
      for (const { uid, view } of views.update(event.key, event.type === "delete" ? undefined : entriesOf(event.object))) {
        post({ type: "pod", side, uid, view, at });
      }
    });
  }
  const floorConfigMap = new Informer({ ...common, path: `/api/v1/namespaces/${data.namespace}/configmaps`, labelSelector: `${floorLabel}=true` });
  floorConfigMap.onChange((event) => {
    const at = Date.now();
    const seq = Number((event.object as { data?: Record<string, string> }).data?.seq);
    if (event.type !== "delete" && Number.isFinite(seq)) post({ type: "floor", probe: "configmap", seq, at });
  });
  const floorReport = new Informer({ ...common, path: `/apis/${apiVersion}/namespaces/${data.namespace}/${reportPlural}`, labelSelector: `${floorLabel}=true` });
  floorReport.onChange((event) => {
    const at = Date.now();
    const seq = Number(event.object.metadata?.annotations?.[floorSeqAnnotation]);
    if (event.type !== "delete" && Number.isFinite(seq)) post({ type: "floor", probe: "report", seq, at });
  });
  const informers = [...watched.map(([, informer]) => informer), floorConfigMap, floorReport];
  for (const informer of informers) informer.start();
  await Promise.all(informers.map((informer) => informer.synced));
  post({ type: "synced" });
  port.on("message", (message: { type?: string }) => {
    if (message.type !== "stop") return;
    void Promise.all(informers.map((informer) => informer.stop()))
      .then(() => clients.close())
      .finally(() => post({ type: "stopped" }));
  });
}

if (!isMainThread && (workerData as { kubeconfig?: unknown } | null)?.kubeconfig) {
  await runObserver(workerData as ObserverData);
}
