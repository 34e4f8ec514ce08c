// Connecting to a cluster: where the configuration comes from, and one set of
// clients per program that share a transport (see http.ts).
//
//   loadKubeConfig({kubeconfig?, env?}): KubeConfig
//     the first of: the explicit path, $KUBECONFIG (a list, like kubectl),
//     the in-cluster service account, ~/.kube/config; else an error that says what to do
//   makeClients(kubeConfig, {userAgent, maxConnections?, requestTimeoutMs?, observer?}): KubeClients
//     { http, core, discovery, coordination, events, customObjects, objects, close() }
//
//   const clients = makeClients(loadKubeConfig({ kubeconfig: args.kubeconfig }), { userAgent: "netservice-agent/0.1.0" });
//   const pod = await clients.core.readNamespacedPod({ namespace: "default", name: "utils-0" });
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import {
  type Configuration,
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  DiscoveryV1Api,
  EventsV1Api,
  KubeConfig,
  KubernetesObjectApi,
  ServerConfiguration,
} from "@kubernetes/client-node";
import { KubeHttp, type RequestObserver } from "./http.ts";

const serviceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export interface LoadKubeConfigOptions {
  /** An explicit kubeconfig file (a --kubeconfig flag); wins over everything else. */
  kubeconfig?: string;
  /** Default process.env. */
  env?: Record<string, string | undefined>;
}

export function loadKubeConfig(options: LoadKubeConfigOptions = {}): KubeConfig {
  const env = options.env ?? process.env;
  const kc = new KubeConfig();
  const fromEnv = (env.KUBECONFIG ?? "").split(delimiter).filter((p) => p !== "");
  const home = env.HOME ?? homedir();
  const defaultFile = home ? join(home, ".kube", "config") : undefined;

  if (options.kubeconfig) {
    loadFiles(kc, [options.kubeconfig], "--kubeconfig");
  } else if (fromEnv.length > 0) {
    loadFiles(kc, fromEnv, "KUBECONFIG");
  } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(serviceAccountTokenPath)) {
    kc.loadFromCluster();
  } else if (defaultFile && existsSync(defaultFile)) {
    loadFiles(kc, [defaultFile], "~/.kube/config");
  } else {
    throw new Error(
      "no Kubernetes configuration found: pass --kubeconfig PATH, set KUBECONFIG, " +
        "run in a pod with a service account token, or create ~/.kube/config",
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new Error(
      `kubeconfig context "${kc.getCurrentContext()}" names no cluster; ` +
        "set current-context to a context with a cluster (kubectl config use-context NAME)",
    );
  }
  return kc;
}

function loadFiles(kc: KubeConfig, files: string[], source: string): void {
  for (const [i, file] of files.entries()) {
    if (!existsSync(file)) {
      if (files.length === 1) throw new Error(`${source}: kubeconfig file ${file} does not exist`);
      continue; // kubectl skips missing entries of a KUBECONFIG list
    }
    if (i === 0 || kc.getClusters().length === 0) {
      kc.loadFromFile(file);
    } else {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kc.mergeConfig(more, true);
    }
  }
  if (kc.getClusters().length === 0) {
    throw new Error(`${source}: none of ${files.join(", ")} holds a cluster`);
  }
}

export interface ClientOptions {
  /** One per program, e.g. "netservice-aggregator/0.1.0". */
  userAgent: string;
  /** Connections for ordinary requests; watches have their own pool. Default 10. */
  maxConnections?: number;
  requestTimeoutMs?: number;
  /** Called once per API request, e.g. to count requests by verb and code. */
  observer?: RequestObserver;
}

export interface KubeClients {
  /** Path-based JSON requests and watches: what the informer, apply and leader election use. */
  readonly http: KubeHttp;
  readonly core: CoreV1Api;
  readonly discovery: DiscoveryV1Api;
  readonly coordination: CoordinationV1Api;
  readonly events: EventsV1Api;
  readonly customObjects: CustomObjectsApi;
  readonly objects: KubernetesObjectApi;
  /** Closes the connections; stop informers and queues first. */
  close(): Promise<void>;
}

export function makeClients(kubeConfig: KubeConfig, options: ClientOptions): KubeClients {
  const http = new KubeHttp({ kubeConfig, ...options });
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const configuration: Configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server.replace(/\/$/, ""), {}),
    authMethods: { default: http.authentication },
    httpApi: http.httpLibrary,
  });
  return {
    http,
    core: new CoreV1Api(configuration),
    discovery: new DiscoveryV1Api(configuration),
    coordination: new CoordinationV1Api(configuration),
    events: new EventsV1Api(configuration),
    customObjects: new CustomObjectsApi(configuration),
    objects: new KubernetesObjectApi(configuration),
    close: () => http.close(),
  };
}
