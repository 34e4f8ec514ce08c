// The simulated cluster's link to the API server: the project's clients and
// informer (common/kube), with client-node's CoreV1Api on the same transport
// for the fakes' pod and node writes; the JSON shapes the fakes read, and a
// work queue whose adds can be awaited, so a test or benchmark knows when a
// write landed.
import {
  CoreV1Api,
  createConfiguration,
  PatchStrategy,
  ResponseContext,
  ServerConfiguration,
  setHeaderOptions,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import { Readable } from "node:stream";
import { makeClients, type ClientOptions, type KubeClients } from "../../common/kube/client.ts";
import type { ClusterAccess, HttpVerb } from "../../common/kube/http.ts";
import type { Logger } from "../../common/log.ts";
import type { Clock } from "../../common/kube/clock.ts";
import { WorkQueue } from "../../common/kube/workqueue.ts";

export type { KubeClients };
export { Informer } from "../../common/kube/informer.ts";
export { isConflict, isNotFound, statusCode } from "../../common/kube/http.ts";
export { realClock, type Clock, type Timer } from "../../common/kube/clock.ts";
export type { Logger };

/** The programs' clients and client-node's CoreV1Api, over one transport. */
export type SimClients = KubeClients & { readonly core: CoreV1Api };

export function makeSimClients(access: ClusterAccess, options: ClientOptions): SimClients {
  return withCoreApi(makeClients(access, options));
}

/**
 * Adds client-node's CoreV1Api, sending through the clients' KubeHttp so that
 * its requests share the pools, the credentials, the User-Agent and the
 * request observer.
 */
export function withCoreApi(clients: KubeClients): SimClients {
  const { http } = clients;
  const httpApi = wrapHttpLibrary({
    send: async (ctx) => {
      const url = new URL(ctx.getUrl());
      if (url.origin !== http.server.origin) {
        throw new Error(`refusing to send a request for ${url.origin} to the cluster at ${http.server.origin}`);
      }
      const body = ctx.getBody();
      if (body !== undefined && typeof body !== "string" && !(body instanceof URLSearchParams)) {
        throw new Error("multipart request bodies are not supported");
      }
      const method = ctx.getHttpMethod() as HttpVerb;
      const res = await http.exchange(method, url.pathname + url.search, ctx.getHeaders(), body?.toString(), ctx.getSignal());
      return new ResponseContext(res.statusCode, res.headers, {
        text: async () => res.body.toString("utf8"),
        binary: async () => res.body,
        stream: () => Readable.toWeb(Readable.from([res.body])) as ReadableStream<Uint8Array>,
      });
    },
  });
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(http.server.href.replace(/\/$/, ""), {}),
    // KubeHttp adds the credentials to every request it sends.
    authMethods: {},
    httpApi,
  });
  return { ...clients, core: new CoreV1Api(configuration) };
}

/** What the fakes need of an informer: a cache by "namespace/name" and change events. */
export interface ObjectSource<T> {
  readonly synced: Promise<void>;
  get(key: string): T | undefined;
  list(): T[];
  onChange(handler: (event: { type: "add" | "update" | "delete"; key: string; object: T }) => void): () => void;
}

export const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
export const strategicMergePatch = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);

/** A pod as plain JSON from a watch, narrowed to the fields the fakes read. */
export type PodJson = {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    namespace?: string;
    name?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
  };
  spec?: {
    nodeName?: string;
    hostNetwork?: boolean;
    containers?: ContainerJson[];
    initContainers?: ContainerJson[];
  };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    startTime?: string;
    conditions?: { type: string; status: string }[];
  };
};

export type ContainerJson = { name: string; image?: string; restartPolicy?: string };

export type NadJson = {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
  spec?: { config?: string };
};

export const nadPath = "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions";

export function podKey(pod: PodJson): string {
  return `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}

/** Kubernetes' metav1.Time text: RFC 3339 in UTC, whole seconds. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * A de-duplicating work queue (common/kube/workqueue.ts) with bounded
 * concurrency whose `addAndWait` resolves once a reconcile of the key that
 * started after the call has succeeded.
 */
export class AwaitableQueue {
  readonly #queue: WorkQueue;
  readonly #workers: number;
  readonly #handler: (key: string) => Promise<void>;
  readonly #waiters = new Map<string, (() => void)[]>();
  #running: Promise<void> | undefined;

  constructor(options: { workers: number; handler: (key: string) => Promise<void>; clock: Clock; logger?: Logger; baseDelayMs?: number }) {
    this.#workers = options.workers;
    this.#handler = options.handler;
    this.#queue = new WorkQueue({ clock: options.clock, ...(options.logger ? { logger: options.logger } : {}), baseDelayMs: options.baseDelayMs ?? 200, maxDelayMs: 30_000, qps: 0 });
  }

  start(): void {
    this.#running ??= this.#queue.run(this.#workers, (key) => this.#process(key));
  }

  add(key: string): void {
    this.#queue.add(key);
  }

  addAndWait(key: string): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(key) ?? [];
      waiters.push(resolve);
      this.#waiters.set(key, waiters);
      this.#queue.add(key);
    });
  }

  /** The keys being handled now. */
  inFlight(): string[] {
    return this.#queue.processingKeys;
  }

  /** Stops the workers; pending waiters resolve, so nobody hangs on a stopped simulation. */
  async stop(): Promise<void> {
    await this.#queue.shutdown();
    for (const waiters of this.#waiters.values()) for (const resolve of waiters) resolve();
    this.#waiters.clear();
  }

  async #process(key: string): Promise<void> {
    const waiters = this.#waiters.get(key) ?? [];
    this.#waiters.delete(key);
    try {
      await this.#handler(key);
    } catch (error) {
      this.#waiters.set(key, [...waiters, ...(this.#waiters.get(key) ?? [])]);
      throw error;
    }
    for (const resolve of waiters) resolve();
  }
}
