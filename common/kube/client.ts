// One set of clients per program, sharing one transport (see http.ts). Where
// the configuration comes from is kubeconfig.ts.
//
//   makeClients(access, {userAgent, maxConnections?, requestTimeoutMs?, observer?}): KubeClients
//     { http, close() }; access: loadKubeConfig(...) (kubeconfig.ts), or client-node's KubeConfig
//
//   const clients = makeClients(loadKubeConfig({ kubeconfig: args.kubeconfig }), { userAgent: "netservice-agent/0.1.0" });
//   const pod = await clients.http.request({ method: "GET", path: "/api/v1/namespaces/default/pods/utils-0" });
//
// The programs make every request through http (informer, apply, leases,
// events), so nothing here loads @kubernetes/client-node; the tools that want
// its generated clients build them on the same transport (hack/sim/kube.ts).
import { type ClusterAccess, KubeHttp, type RequestObserver } from "./http.ts";

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
  /** Closes the connections; stop informers and queues first. */
  close(): Promise<void>;
}

export function makeClients(access: ClusterAccess, options: ClientOptions): KubeClients {
  const http = new KubeHttp({ kubeConfig: access, ...options });
  return { http, close: () => http.close() };
}
