// Builders for the objects the unit tests feed to the pure functions.
import path from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { annotations, netServiceSchema, type NetService } from "../../common/api.ts";

export const repoRoot = path.resolve(import.meta.dirname, "..", "..");

/** Runs per fast-check property; NETSERVICE_PROPERTY_RUNS trades time for depth. */
export const propertyRuns = Number(process.env.NETSERVICE_PROPERTY_RUNS ?? 2000);

export type PodOptions = {
  namespace?: string;
  name?: string;
  uid?: string;
  labels?: Record<string, string>;
  /** Attachments for the network-status annotation (serialised as Multus would). */
  networkStatus?: unknown;
  /** The k8s.v1.cni.cncf.io/networks request, verbatim. */
  networks?: string;
  extraAnnotations?: Record<string, string>;
  ready?: boolean;
  deleting?: boolean;
  phase?: string;
  hostname?: string;
  subdomain?: string;
};

export function pod(options: PodOptions = {}): V1Pod {
  const name = options.name ?? "utils-1";
  const podAnnotations: Record<string, string> = { ...options.extraAnnotations };
  if (options.networkStatus !== undefined) {
    podAnnotations[annotations.networkStatus] = JSON.stringify(options.networkStatus);
  }
  if (options.networks !== undefined) podAnnotations[annotations.networksRequest] = options.networks;
  return {
    metadata: {
      namespace: options.namespace ?? "default",
      name,
      uid: options.uid ?? `uid-${name}`,
      labels: options.labels ?? { app: "utils" },
      annotations: podAnnotations,
      ...(options.deleting ? { deletionTimestamp: new Date("2026-01-01T00:00:00Z") } : {}),
    },
    spec: { containers: [], ...(options.hostname ? { hostname: options.hostname } : {}), ...(options.subdomain ? { subdomain: options.subdomain } : {}) },
    status: {
      phase: options.phase ?? "Running",
      conditions: [{ type: "Ready", status: options.ready === false ? "False" : "True" }],
    },
  };
}

export type NetServiceOptions = {
  namespace?: string;
  name?: string;
  uid?: string;
  generation?: number;
  netAttachDef?: string;
  selector?: Record<string, string>;
  ports?: unknown[];
  ipFamilies?: readonly string[];
  publishNotReadyAddresses?: boolean;
  templateServiceName?: string;
};

export function netService(options: NetServiceOptions = {}): NetService {
  const name = options.name ?? "corens";
  return netServiceSchema.parse({
    metadata: {
      namespace: options.namespace ?? "default",
      name,
      uid: options.uid ?? `uid-${name}`,
      generation: options.generation ?? 1,
    },
    spec: {
      netAttachDef: options.netAttachDef ?? "core",
      selector: options.selector ?? { app: "utils" },
      ...(options.ports ? { ports: options.ports } : {}),
      ...(options.ipFamilies ? { ipFamilies: options.ipFamilies } : {}),
      ...(options.publishNotReadyAddresses !== undefined
        ? { publishNotReadyAddresses: options.publishNotReadyAddresses }
        : {}),
      ...(options.templateServiceName ? { templateServiceName: options.templateServiceName } : {}),
    },
  });
}

/** A network-status entry as Multus >= 3.6 writes it. */
export function attachment(name: string, ips: string[], extra: Record<string, unknown> = {}): object {
  return { name, interface: "net1", ips, mac: "02:00:00:00:00:01", dns: {}, ...extra };
}
