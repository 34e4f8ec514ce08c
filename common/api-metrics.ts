// Metrics of the API requests a program makes, fed by the shared transport's
// RequestObserver (common/kube/http.ts): every request, including watches and
// those that failed without an answer (code "0").
//
//   const observer = apiRequestMetrics(registry);
//   const clients = makeClients(kubeConfig, { userAgent, observer });
import { Counter, Histogram, type Registry } from "prom-client";
import type { RequestObserver } from "./kube/http.ts";

export function apiRequestMetrics(registry: Registry): RequestObserver {
  const requests = new Counter({
    name: "netservice_api_requests_total",
    help: "Requests to the Kubernetes API, by verb (get, list, watch, create, apply, patch, delete, ...), resource and HTTP status code (0: no answer).",
    labelNames: ["verb", "resource", "code"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "netservice_api_request_duration_seconds",
    help: "Duration of Kubernetes API requests other than watches, by verb.",
    labelNames: ["verb"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return (event) => {
    requests.inc({ verb: event.verb, resource: event.resource, code: String(event.code) });
    if (event.verb !== "watch") duration.observe({ verb: event.verb }, event.durationMs / 1000);
  };
}
