// The API shared by the node agent and the aggregator: names, labels and the
// two custom resources, parsed once at the edge through zod.
import { z } from "zod";
import { dnsLabelPattern } from "./kube/names.ts";

export const group = "svcctl.metaswitch.com";
export const version = "v1alpha1";
export const apiVersion = `${group}/${version}`;

export const netServiceKind = "NetService";
export const netServicePlural = "netservices";
export const reportKind = "NetServiceNodeReport";
export const reportPlural = "netservicenodereports";

/** Namespace the programs run in and the reports live in, unless configured otherwise. */
export const defaultSystemNamespace = "netservice-system";

export const agentFieldManager = "netservice-agent";
export const aggregatorFieldManager = "netservice-aggregator";

/** Value of endpointslice.kubernetes.io/managed-by on the slices the aggregator writes. */
export const sliceManagedBy = "netservice-aggregator.svcctl.metaswitch.com";

export const labels = {
  /** On every object the aggregator writes: the NetService it belongs to (name only; same namespace). */
  netService: `${group}/netservice`,
  /** On reports and heartbeat Leases: the node they describe. */
  nodeName: `${group}/node-name`,
  /** "true" on the Leases the agents renew as their heartbeat (each named after its node). */
  agentHeartbeat: `${group}/agent-heartbeat`,
  serviceName: "kubernetes.io/service-name",
  managedBy: "endpointslice.kubernetes.io/managed-by",
  skipMirror: "endpointslice.kubernetes.io/skip-mirror",
  /** As upstream on the Endpoints and EndpointSlices of a headless Service: kube-proxy's watches leave them out. */
  headless: "service.kubernetes.io/headless",
} as const;

export const annotations = {
  networkStatus: "k8s.v1.cni.cncf.io/network-status",
  /** Written by Multus before v3.6 (and still by some). The singular name wins when both are present. */
  legacyNetworkStatus: "k8s.v1.cni.cncf.io/networks-status",
  networksRequest: "k8s.v1.cni.cncf.io/networks",
  triggerTime: "endpoints.kubernetes.io/last-change-trigger-time",
  overCapacity: "endpoints.kubernetes.io/over-capacity",
} as const;

export const servicePortSchema = z.object({
  name: z.string().optional(),
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(["TCP", "UDP", "SCTP"]).default("TCP"),
  appProtocol: z.string().optional(),
});
export type ServicePort = z.infer<typeof servicePortSchema>;

export const ipFamilySchema = z.enum(["IPv4", "IPv6"]);
export type IpFamily = z.infer<typeof ipFamilySchema>;

export const netServiceSpecSchema = z.object({
  netAttachDef: z.string().min(1),
  selector: z.record(z.string(), z.string()),
  ports: z.array(servicePortSchema).default([]),
  ipFamilies: z.array(ipFamilySchema).optional(),
  publishNotReadyAddresses: z.boolean().default(false),
  templateServiceName: z.string().regex(dnsLabelPattern).max(63).optional(),
});

export const netServiceSchema = z.object({
  metadata: z.object({
    namespace: z.string(),
    name: z.string(),
    uid: z.string(),
    generation: z.number().int().default(0),
  }),
  spec: netServiceSpecSchema,
});

/** A NetService as both programs use it, after parsing. */
export type NetService = z.infer<typeof netServiceSchema>;

export function templateServiceName(ns: NetService): string {
  return ns.spec.templateServiceName ?? `${ns.metadata.name}-template`;
}

export const netServiceConditionReasons = {
  ready: "EndpointsPublished",
  noMatchingPods: "NoMatchingPods",
  serviceNameTaken: "ServiceNameTaken",
  applyFailed: "ApplyFailed",
  invalidSpec: "InvalidSpec",
} as const;

/** One pod of the node, listed once however many NetServices select it. */
export const reportPodSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  uid: z.string(),
  hostname: z.string().optional(),
  /** spec.subdomain: the hostname is published only by the NetService of that name, as upstream. */
  subdomain: z.string().optional(),
  /** Pod condition Ready is True. */
  serving: z.boolean(),
  /** deletionTimestamp is set. */
  terminating: z.boolean(),
});
export type ReportPod = z.infer<typeof reportPodSchema>;

export const reportEndpointSchema = z.object({
  /** Index into spec.pods. */
  pod: z.number().int().min(0),
  /** Canonical addresses on the NetService's network, sorted. */
  addresses: z.array(z.string()).min(1),
});
export type ReportEndpoint = z.infer<typeof reportEndpointSchema>;

export const reportNetServiceSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  uid: z.string(),
  /** metadata.generation of the NetService the agent computed this entry from. */
  generation: z.number().int(),
  endpoints: z.array(reportEndpointSchema),
});
export type ReportNetService = z.infer<typeof reportNetServiceSchema>;

export const reportSpecSchema = z.object({
  nodeName: z.string(),
  /** When the agent first saw the change this report publishes (RFC 3339, milliseconds). */
  triggerTime: z.string().optional(),
  pods: z.array(reportPodSchema),
  netServices: z.array(reportNetServiceSchema),
});
export type ReportSpec = z.infer<typeof reportSpecSchema>;
