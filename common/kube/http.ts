// The HTTP transport to the API server, for our own path-based requests
// (informer list/watch, apply, leases) and for client-node's generated clients
// where the tools use them (hack/sim/kube.ts), so that every request goes
// over the same undici pools, carries the program's User-Agent and is counted
// by one RequestObserver.
//
//   new KubeHttp({kubeConfig, userAgent, maxConnections?, requestTimeoutMs?, observer?})
//     kubeConfig: a ClusterAccess: ours (kubeconfig.ts) or client-node's KubeConfig
//     request<T>({method, path, query?, body?, contentType?, signal?}): Promise<T>
//                                JSON in, JSON out; a non-2xx answer throws KubeApiError
//     watch(path, query, signal): AsyncGenerator<WatchEvent>
//                                one decoded event per line of a watch stream
//     exchange(method, pathAndQuery, headers, body?, signal?): Promise<{statusCode, headers, body}>
//                                one request, the body read whole: what client-node's generated clients plug in
//     close(): Promise<void>     closes the pools (aborts open watches)
//   type RequestObserver = (event: {verb, resource, code, durationMs}) => void
//   class KubeApiError extends Error { code, reason, status }
//   statusCode(err): number | undefined   HTTP status of a KubeApiError or a client-node ApiException
//   isNotFound(err), isConflict(err), isGone(err)
//   describeRequest(method, url, contentType?): {verb, resource}
//
//   const http = new KubeHttp({ kubeConfig, userAgent: "netservice-agent/0.1.0" });
//   const pods = await http.request<{ items: unknown[] }>({ method: "GET", path: "/api/v1/pods" });
//
// Why two pools: the request pool honours maxConnections; watches stay open
// for minutes, and over HTTP/1.1 (no ALPN h2, e.g. through some proxies) each
// one holds a connection, so they would starve ordinary requests in a bounded
// pool. Over HTTP/2, which undici 8 negotiates by default and kube-apiserver
// speaks, each pool multiplexes its streams over one connection.
//
// Why not client-node's Watch: it takes no AbortSignal and hands back its
// AbortController only once response headers arrive, so a stop() during
// connect cannot cancel it; it ends every stream after a fixed, private 30 s of
// silence (shorter than the API server's one-minute bookmark period); it
// swallows exceptions thrown by the event callback as if they were JSON parse
// errors and silently skips undecodable lines; and it builds a new undici
// Agent, hence a new TLS connection, for every watch.
import type { RequestOptions as HttpsRequestOptions } from "node:https";
import type { ConnectionOptions } from "node:tls";
import { Agent, type Dispatcher, ProxyAgent } from "undici";

export type KubeVerb =
  | "get"
  | "list"
  | "watch"
  | "create"
  | "update"
  | "patch"
  | "apply"
  | "delete"
  | "deletecollection"
  | (string & {});

export interface RequestEvent {
  verb: KubeVerb;
  /** Plural resource name, with "/subresource" when there is one (e.g. "netservices/status"); "" for discovery. */
  resource: string;
  /** HTTP status code, or 0 when no response arrived (connection error, timeout, abort). */
  code: number;
  /** Until response headers arrived (or the request failed). */
  durationMs: number;
}

export type RequestObserver = (event: RequestEvent) => void;

/**
 * The server and credentials: a ClusterConfig (kubeconfig.ts), which the
 * programs use, or client-node's KubeConfig, which the tools and tests use.
 */
export interface ClusterAccess {
  getCurrentCluster(): { readonly server: string; readonly proxyUrl?: string | undefined } | null;
  /** Sets TLS material, headers (Authorization) and auth (basic) on the options. */
  applyToHTTPSOptions(options: HttpsRequestOptions): Promise<void>;
}

export interface KubeHttpOptions {
  kubeConfig: ClusterAccess;
  /** Sent on every request, e.g. "netservice-agent/0.1.0"; shows up in API server audit logs and metrics. */
  userAgent: string;
  /** Connections to the API server for ordinary requests (not watches). Default 10. */
  maxConnections?: number;
  /** Limit for response headers and for silence within a response body of ordinary requests. Default 30 s. */
  requestTimeoutMs?: number;
  observer?: RequestObserver;
}

export type HttpVerb = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface KubeRequest {
  method: HttpVerb;
  /** Absolute API path, e.g. "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices". */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Serialised as JSON. */
  body?: unknown;
  /** Default application/json when there is a body. */
  contentType?: string;
  signal?: AbortSignal;
}

export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR" | (string & {});
  object: Record<string, unknown>;
}

/** A Kubernetes Status that came back with a non-2xx code. */
export class KubeApiError extends Error {
  readonly code: number;
  /** metav1.StatusReason, e.g. "NotFound", "Conflict", "AlreadyExists", "Expired", "Gone". */
  readonly reason: string;
  readonly status: Record<string, unknown> | undefined;

  constructor(method: string, path: string, code: number, body: string) {
    const status = parseStatus(body);
    const reason = typeof status?.reason === "string" ? status.reason : "";
    const detail = typeof status?.message === "string" ? status.message : body.slice(0, 500);
    super(`${method} ${path}: ${code}${reason ? ` ${reason}` : ""}: ${detail}`);
    this.name = "KubeApiError";
    this.code = code;
    this.reason = reason;
    this.status = status;
  }
}

/** The HTTP status of an API error from either KubeHttp or a client-node generated client. */
export function statusCode(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "number") {
    return err.code;
  }
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
export const isGone = (err: unknown): boolean => statusCode(err) === 410;

interface Pools {
  requests: Dispatcher;
  watches: Dispatcher;
}

export class KubeHttp {
  private readonly kubeConfig: ClusterAccess;
  /** The cluster's server URL, from the kubeconfig. */
  readonly server: URL;
  private readonly userAgent: string;
  private readonly maxConnections: number;
  private readonly requestTimeoutMs: number;
  private readonly observer: RequestObserver | undefined;
  private pools: Promise<Pools> | undefined;
  private closed = false;

  constructor(options: KubeHttpOptions) {
    const cluster = options.kubeConfig.getCurrentCluster();
    if (!cluster) {
      throw new Error(
        "the kubeconfig has no current cluster; set current-context (kubectl config use-context NAME)",
      );
    }
    this.kubeConfig = options.kubeConfig;
    this.server = new URL(cluster.server);
    this.userAgent = options.userAgent;
    this.maxConnections = options.maxConnections ?? 10;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.observer = options.observer;
  }

  async request<T = unknown>(req: KubeRequest): Promise<T> {
    const path = this.fullPath(req.path, req.query);
    const headers: Record<string, string> = { accept: "application/json" };
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers["content-type"] = req.contentType ?? "application/json";
    }
    const res = await this.send("requests", req.method, path, headers, body, req.signal);
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) {
      throw new KubeApiError(req.method, req.path, res.statusCode, text);
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /**
   * Opens a watch (adds watch=true to query) and yields its events until the
   * server ends the stream. Throws KubeApiError if the server refuses the watch
   * and rethrows connection errors and aborts. An ERROR event is yielded, not
   * thrown: its object is a Status the caller must act on (410 means relist).
   */
  async *watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent> {
    const fullPath = this.fullPath(path, { ...query, watch: true });
    const res = await this.send("watches", "GET", fullPath, { accept: "application/json" }, undefined, signal);
    if (res.statusCode !== 200) {
      throw new KubeApiError("WATCH", path, res.statusCode, await res.body.text());
    }
    res.body.setEncoding("utf8");
    let buffered = "";
    try {
      for await (const chunk of res.body as AsyncIterable<string>) {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== "") yield JSON.parse(line) as WatchEvent;
        }
      }
    } finally {
      res.body.destroy();
    }
  }

  /**
   * One request to a path with its query (on this cluster), its response read
   * whole, which releases the connection at once; what client-node's
   * generated clients send through (hack/sim/kube.ts). Credentials and the
   * User-Agent are added here.
   */
  async exchange(
    method: HttpVerb,
    pathAndQuery: string,
    headers: Record<string, string>,
    body?: string,
    signal?: AbortSignal,
  ): Promise<{ statusCode: number; headers: Record<string, string>; body: Buffer }> {
    const lowercase: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) lowercase[name.toLowerCase()] = value;
    const res = await this.send("requests", method, pathAndQuery, lowercase, body, signal);
    const data = Buffer.from(await res.body.arrayBuffer());
    const responseHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    return { statusCode: res.statusCode, headers: responseHeaders, body: data };
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = await this.pools?.catch(() => undefined);
    if (pools) await Promise.all([pools.requests.close(), pools.watches.destroy()]);
  }

  private async send(
    pool: keyof Pools,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const started = performance.now();
    const { verb, resource } = describeRequest(method, new URL(path, this.server), headers["content-type"]);
    let code = 0;
    try {
      if (this.closed) throw new Error("Kubernetes client is closed");
      const [pools, auth] = await Promise.all([this.getPools(), this.authHeaders()]);
      const res = await pools[pool].request({
        origin: this.server.origin,
        path,
        method: method as Dispatcher.HttpMethod,
        headers: { ...auth, ...headers, "user-agent": this.userAgent },
        body: body ?? null,
        signal: signal ?? null,
        headersTimeout: this.requestTimeoutMs,
        bodyTimeout: pool === "watches" ? 0 : this.requestTimeoutMs,
      });
      code = res.statusCode;
      return res;
    } finally {
      this.observe({ verb, resource, code, durationMs: performance.now() - started });
    }
  }

  /** Credentials as headers, re-read per request so that rotated tokens and exec plugins keep working. */
  private async authHeaders(): Promise<Record<string, string>> {
    const opts: HttpsRequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
    }
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    return headers;
  }

  private getPools(): Promise<Pools> {
    if (!this.pools) {
      const building = this.buildPools();
      building.catch(() => {
        if (this.pools === building) this.pools = undefined;
      });
      this.pools = building;
    }
    return this.pools;
  }

  // TLS material is read once, when the first request needs it: a client
  // certificate that rotates on disk needs a restart (tokens do not).
  private async buildPools(): Promise<Pools> {
    const opts: HttpsRequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const tls: ConnectionOptions = {};
    if (opts.ca !== undefined) tls.ca = opts.ca;
    if (opts.cert !== undefined) tls.cert = opts.cert;
    if (opts.key !== undefined) tls.key = opts.key;
    if (opts.pfx !== undefined) tls.pfx = opts.pfx;
    if (opts.passphrase !== undefined) tls.passphrase = opts.passphrase;
    if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
    if (opts.servername !== undefined) tls.servername = opts.servername;
    const proxyUrl = this.kubeConfig.getCurrentCluster()?.proxyUrl;
    const pool = (connections: number | null): Dispatcher => {
      if (!proxyUrl) {
        return new Agent({ connections, connect: { ...tls, keepAlive: true, keepAliveInitialDelay: 30_000 } });
      }
      if (!/^https?:/.test(proxyUrl)) {
        throw new Error(`proxy-url ${proxyUrl}: only http and https proxies are supported; change or remove it`);
      }
      return new ProxyAgent({ uri: proxyUrl, requestTls: tls, connections });
    };
    return { requests: pool(this.maxConnections), watches: pool(null) };
  }

  private fullPath(path: string, query: KubeRequest["query"]): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) params.set(name, String(value));
    }
    const search = params.size > 0 ? `?${params.toString()}` : "";
    return `${this.server.pathname.replace(/\/$/, "")}${path}${search}`;
  }

  private observe(event: RequestEvent): void {
    try {
      this.observer?.(event);
    } catch {
      // A broken metrics hook must not break API calls.
    }
  }
}

/** Kubernetes verb and resource of a request, as the API server's own metrics name them. */
export function describeRequest(
  method: string,
  url: URL,
  contentType?: string,
): { verb: KubeVerb; resource: string } {
  const segments = url.pathname.split("/").filter((s) => s !== "");
  const apiIndex = segments.findIndex((s) => s === "api" || s === "apis");
  let rest: string[] = [];
  if (apiIndex >= 0) {
    rest = segments.slice(apiIndex + (segments[apiIndex] === "api" ? 2 : 3));
  }
  const namespaceSubresource = rest.length === 3 && (rest[2] === "status" || rest[2] === "finalize");
  if (rest[0] === "namespaces" && rest.length >= 3 && !namespaceSubresource) rest = rest.slice(2);
  const [resource = "", name, subresource] = rest;
  const withSub = subresource ? `${resource}/${subresource}` : resource;
  switch (method.toUpperCase()) {
    case "GET":
      if (url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1") {
        return { verb: "watch", resource: withSub };
      }
      return { verb: name ? "get" : "list", resource: withSub };
    case "POST":
      return { verb: "create", resource: withSub };
    case "PUT":
      return { verb: "update", resource: withSub };
    case "PATCH":
      return { verb: contentType?.startsWith("application/apply-patch") ? "apply" : "patch", resource: withSub };
    case "DELETE":
      return { verb: name ? "delete" : "deletecollection", resource: withSub };
    default:
      return { verb: method.toLowerCase(), resource: withSub };
  }
}

function parseStatus(body: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
