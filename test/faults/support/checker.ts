// The one checker every fault scenario ends with: the truth computed from the
// pods (truth.ts) against the Services, Endpoints, EndpointSlices and status
// in the cluster, exactly, with every difference spelled out.
//
//   const checker = new Checker(admin.http, ["churn"]);
//   const { seconds } = await checker.waitForConvergence({ timeoutMs: 60_000 });
//   const frozen = await checker.expected();          // the truth now, to hold a hung node's pods to later
//   await checker.waitForConvergence({ staleNodes: { nodes: ["sim-node-1"], as: frozen } });
//
// A check reads the pods, NetServices and Nodes, then the published objects,
// then the pods, NetServices and Nodes again; if anything moved in between,
// the check proves nothing either way and is repeated.
import { setTimeout as delay } from "node:timers/promises";
import type { KubeHttp } from "../../../common/kube/http.ts";
import {
  addressKey,
  expectedEndpoints,
  expectedServices,
  expectedStatus,
  nodeUnserved,
  type ExpectedAddress,
  type ExpectedNetService,
  type ExpectedPort,
  type Family,
  type NetServiceJson,
  type PodJson,
} from "./truth.ts";

const ourSliceManager = "netservice-aggregator.svcctl.metaswitch.com";
const maxEndpointsAddresses = 1000;
const maxEndpointsPerSlice = 100;

type OwnerReference = { uid: string; controller?: boolean };
type Meta = {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
};
type Port = { name?: string; port: number; protocol?: string; appProtocol?: string };
type EndpointAddress = { ip: string; hostname?: string; nodeName?: string; targetRef?: { name?: string; uid?: string } };
export type EndpointsJson = { metadata: Meta; subsets?: { addresses?: EndpointAddress[]; notReadyAddresses?: EndpointAddress[]; ports?: Port[] }[] };
export type SliceJson = {
  metadata: Meta;
  addressType: string;
  endpoints?: {
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    hostname?: string;
    nodeName?: string;
    targetRef?: { name?: string; uid?: string };
  }[];
  ports?: Port[];
};
export type ServiceJson = {
  metadata: Meta;
  spec: {
    clusterIP?: string;
    selector?: Record<string, string>;
    ports?: Port[];
    publishNotReadyAddresses?: boolean;
    ipFamilyPolicy?: string;
    ipFamilies?: string[];
  };
};
type Condition = { type: string; status: string; reason?: string; observedGeneration?: number };
type NetServiceWithStatus = NetServiceJson & {
  status?: { observedGeneration?: number; readyEndpoints?: number; notReadyEndpoints?: number; nodesReporting?: number; conditions?: Condition[] };
};

/** What a check found: `moving` when the cluster changed while it looked. */
export type CheckResult = {
  moving: boolean;
  differences: string[];
  netServices: number;
  addresses: number;
  compared: Compared;
  /** What the truth was computed from (pods' and NetServices' versions, nodes): equal means the inputs did not change. */
  inputs?: string;
};

/**
 * How much a check compared, so that a scenario can fail when it compared
 * (nearly) nothing: a checker that agrees with an empty cluster proves
 * nothing. Addresses by family, over all NetServices and per NetService.
 */
export type Compared = {
  netServicesWithEndpoints: number;
  addresses: Record<Family, number>;
  /** Addresses that must carry a hostname (the pod's subdomain names the NetService). */
  hostnames: number;
  byNetService: Record<string, Record<Family, number>>;
};

/** The least a scenario must have compared; byNetService by namespace/name. */
export type Minimum = {
  netServicesWithEndpoints: number;
  addresses: Record<Family, number>;
  hostnames: number;
  byNetService: Record<string, Partial<Record<Family, number>>>;
};

export type StaleNodes = {
  /** Nodes whose agent cannot report (hung): their pods are held to `as`, not to the truth of now. */
  nodes: readonly string[];
  as: ReadonlyMap<string, ExpectedNetService>;
  /** Their heartbeat is stale too: the held endpoints are published not serving. */
  notServing?: boolean;
};

export type ConvergenceOptions = {
  timeoutMs?: number;
  /** Where the clock starts for the reported seconds; default now. */
  since?: number;
  staleNodes?: StaleNodes;
  intervalMs?: number;
};

export class Checker {
  readonly #http: KubeHttp;
  readonly #namespaces: readonly string[];

  constructor(http: KubeHttp, namespaces: readonly string[]) {
    this.#http = http;
    this.#namespaces = namespaces;
  }

  /** The truth now, from the pods (for every NetService of the checked namespaces). */
  async expected(): Promise<Map<string, ExpectedNetService>> {
    const inputs = await this.#inputs();
    return expectedEndpoints(inputs.netServices, inputs.pods, inputs.nodes, inputs.unserved);
  }

  /** One check; see the file comment for what `moving` means. */
  async check(staleNodes?: StaleNodes): Promise<CheckResult> {
    const [result] = await this.checkAgainst([staleNodes]);
    return result as CheckResult;
  }

  /**
   * One look at the cluster compared with several truths: the truth of now
   * with each given set of stale nodes held (undefined: none). For a moment
   * of transition, when either of two states is right and nothing else is.
   */
  async checkAgainst(stales: readonly (StaleNodes | undefined)[]): Promise<CheckResult[]> {
    const before = await this.#inputs();
    const published = await Promise.all(this.#namespaces.map((namespace) => this.#published(namespace)));
    const after = await this.#inputs();
    if (before.fingerprint !== after.fingerprint) {
      return stales.map(() => ({ moving: true, differences: [], netServices: 0, addresses: 0, compared: comparedOf([]) }));
    }
    const now = expectedEndpoints(before.netServices, before.pods, before.nodes, before.unserved);
    return stales.map((staleNodes) => {
      const expected = staleNodes ? holdStaleNodes(now, staleNodes) : now;
      const differences: string[] = [];
      let addresses = 0;
      for (const want of expected.values()) {
        addresses += want.addresses.size;
        const objects = published[this.#namespaces.indexOf(want.netService.metadata.namespace)];
        if (!objects) continue;
        differences.push(...compareNetService(want, objects).map((line) => `${want.key}: ${line}`));
      }
      return { moving: false, differences, netServices: expected.size, addresses, compared: comparedOf(expected.values()), inputs: before.fingerprint };
    });
  }

  /**
   * Polls until a check finds no difference; returns the seconds from
   * `since`. Throws after timeoutMs with the differences of the last check.
   */
  async waitForConvergence(options: ConvergenceOptions = {}): Promise<{ seconds: number; checks: number; netServices: number; addresses: number; compared: Compared }> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    const since = options.since ?? Date.now();
    const deadline = Date.now() + timeoutMs;
    let last: CheckResult | undefined;
    let checks = 0;
    for (;;) {
      checks++;
      try {
        const result = await this.check(options.staleNodes);
        if (!result.moving) last = result;
        if (!result.moving && result.differences.length === 0) {
          return { seconds: (Date.now() - since) / 1000, checks, netServices: result.netServices, addresses: result.addresses, compared: result.compared };
        }
      } catch (err) {
        // The API server may be down in the middle of a fault; that is not a difference.
        last = { moving: false, differences: [`the check itself failed: ${(err as Error).message}`], netServices: 0, addresses: 0, compared: comparedOf([]) };
      }
      if (Date.now() > deadline) {
        const shown = last?.differences.slice(0, 40) ?? ["the cluster never held still long enough to check"];
        const more = (last?.differences.length ?? 0) - shown.length;
        throw new Error(
          `not converged after ${timeoutMs / 1000} s (${checks} checks); differences in the last check:\n  ${shown.join("\n  ")}` +
            (more > 0 ? `\n  ... and ${more} more` : ""),
        );
      }
      await delay(options.intervalMs ?? 500);
    }
  }

  /**
   * After convergence: checks again and again for `seconds`. Converging once
   * proves little if the next write undoes it (a status overwritten, a repair
   * that flaps). A difference while the inputs are those of the last exact
   * check is drift and ends the hold at once. A difference after the inputs
   * changed (a graceful deletion that ends after the churn, a late kubelet
   * write) is the programs following that change: they get `catchUpMs`
   * (default 10 s; count-only status changes are paced at 1 s) to be exact
   * again, and the hold goes on. `exactChecks` counts the exact checks,
   * `changes` the input changes followed.
   */
  async holdsExact(options: { seconds: number; staleNodes?: StaleNodes; intervalMs?: number; catchUpMs?: number }): Promise<{ exactChecks: number; moving: number; changes: number; differences: string[]; afterSeconds: number }> {
    const start = Date.now();
    const catchUpMs = options.catchUpMs ?? 10_000;
    let exactChecks = 0;
    let moving = 0;
    let changes = 0;
    let exactInputs: string | undefined;
    let followingSince: number | undefined;
    const outcome = (differences: string[]) => ({ exactChecks, moving, changes, differences, afterSeconds: (Date.now() - start) / 1000 });
    while (Date.now() - start < options.seconds * 1000 || followingSince !== undefined) {
      const result = await this.check(options.staleNodes);
      if (result.moving) {
        moving++;
      } else if (result.differences.length === 0) {
        exactChecks++;
        exactInputs = result.inputs;
        followingSince = undefined;
      } else if (exactInputs !== undefined && result.inputs === exactInputs) {
        return outcome(["drifted while nothing it depends on changed:", ...result.differences]);
      } else {
        if (followingSince === undefined) {
          followingSince = Date.now();
          changes++;
        }
        exactInputs = undefined;
        if (Date.now() - followingSince > catchUpMs) {
          return outcome([`a change of the inputs was not followed within ${catchUpMs / 1000} s:`, ...result.differences]);
        }
      }
      await delay(options.intervalMs ?? 250);
    }
    return outcome([]);
  }

  /**
   * Every object a NetService controls (Services, Endpoints, EndpointSlices)
   * and every NetService (whose resourceVersion moves with its status), by
   * kind and name, with its resourceVersion: equal twice means nobody wrote
   * any of them in between.
   */
  async publishedVersions(): Promise<Map<string, string>> {
    const versions = new Map<string, string>();
    for (const namespace of this.#namespaces) {
      const objects = await this.#published(namespace);
      const uids = new Set([...objects.statuses.keys()]);
      const controlled = (meta: Meta) => meta.ownerReferences?.some((ref) => ref.controller === true && uids.has(ref.uid)) ?? false;
      for (const [kind, list] of [["Service", [...objects.services.values()]], ["Endpoints", [...objects.endpoints.values()]], ["EndpointSlice", objects.slices]] as const) {
        for (const object of list) if (controlled(object.metadata)) versions.set(`${kind} ${namespace}/${object.metadata.name}`, object.metadata.resourceVersion ?? "");
      }
      for (const netService of objects.statuses.values()) versions.set(`NetService ${namespace}/${netService.metadata.name}`, netService.metadata.resourceVersion ?? "");
    }
    return versions;
  }

  async #inputs(): Promise<{ pods: PodJson[]; netServices: NetServiceJson[]; nodes: Set<string>; unserved: Set<string>; fingerprint: string }> {
    const [nodeList, ...perNamespace] = await Promise.all([
      this.#list<{ metadata: Meta } & Parameters<typeof nodeUnserved>[0]>("/api/v1/nodes"),
      ...this.#namespaces.map(async (namespace) => ({
        pods: await this.#list<PodJson>(`/api/v1/namespaces/${namespace}/pods`),
        netServices: await this.#list<NetServiceJson>(`/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${namespace}/netservices`),
      })),
    ]);
    const pods = perNamespace.flatMap((each) => each.pods);
    const netServices = perNamespace.flatMap((each) => each.netServices);
    const nodes = new Set(nodeList.map((node) => node.metadata.name));
    const unserved = new Set(nodeList.filter(nodeUnserved).map((node) => node.metadata.name));
    // Status writes change a NetService's resourceVersion but not the truth: only generations count.
    const generations = netServices.map((o) => `${o.metadata.uid}#${o.metadata.generation}`);
    const podVersions = pods.map((o) => `${o.metadata.uid}@${o.metadata.resourceVersion}`);
    const fingerprint = [...podVersions, ...generations, ...nodes, ...[...unserved].map((node) => `unserved:${node}`)].sort().join(",");
    return { pods, netServices, nodes, unserved, fingerprint };
  }

  async #published(namespace: string): Promise<Published> {
    const [endpoints, slices, services, netServices] = await Promise.all([
      this.#list<EndpointsJson>(`/api/v1/namespaces/${namespace}/endpoints`),
      this.#list<SliceJson>(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`),
      this.#list<ServiceJson>(`/api/v1/namespaces/${namespace}/services`),
      this.#list<NetServiceWithStatus>(`/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${namespace}/netservices`),
    ]);
    return {
      endpoints: new Map(endpoints.map((e) => [e.metadata.name, e])),
      slices,
      services: new Map(services.map((s) => [s.metadata.name, s])),
      statuses: new Map(netServices.map((n) => [n.metadata.uid, n])),
    };
  }

  async #list<T>(path: string): Promise<T[]> {
    const list = await this.#http.request<{ items?: T[] }>({ method: "GET", path });
    return list.items ?? [];
  }
}

type Published = {
  endpoints: Map<string, EndpointsJson>;
  slices: SliceJson[];
  services: Map<string, ServiceJson>;
  statuses: Map<string, NetServiceWithStatus>;
};

/** Every way the published objects of one NetService differ from what it must publish. */
export function compareNetService(want: ExpectedNetService, published: Published): string[] {
  const { netService } = want;
  const uid = netService.metadata.uid;
  const name = netService.metadata.name;
  const services = expectedServices(netService);
  const ports = normalPorts(services.ports);
  const out: string[] = [];

  const service = published.services.get(name);
  if (!service) out.push(`Service ${name} is missing`);
  else {
    out.push(...compareService(`Service ${name}`, service, uid, ports, services.publishNotReadyAddresses));
    if (Object.keys(service.spec.selector ?? {}).length > 0) out.push(`Service ${name} has a selector ${JSON.stringify(service.spec.selector)}`);
    const families = JSON.stringify([...(service.spec.ipFamilies ?? [])].sort());
    if (service.spec.ipFamilyPolicy !== services.ipFamilyPolicy || families !== JSON.stringify(services.ipFamilies)) {
      out.push(`Service ${name} ipFamilies ${service.spec.ipFamilyPolicy} ${families}, want ${services.ipFamilyPolicy} ${JSON.stringify(services.ipFamilies)}`);
    }
  }
  const templateName = services.templateName;
  const template = published.services.get(templateName);
  if (!template) out.push(`template Service ${templateName} is missing`);
  else {
    out.push(...compareService(`template Service ${templateName}`, template, uid, ports, services.publishNotReadyAddresses));
    if (JSON.stringify(sortedObject(template.spec.selector)) !== JSON.stringify(sortedObject(netService.spec.selector))) {
      out.push(`template Service ${templateName} selector ${JSON.stringify(template.spec.selector)}, want ${JSON.stringify(netService.spec.selector)}`);
    }
  }

  out.push(...compareEndpoints(want, published.endpoints.get(name), ports));
  out.push(...compareSlices(want, published.slices, ports));

  const status = published.statuses.get(uid)?.status;
  const generation = netService.metadata.generation ?? 0;
  const wantStatus = expectedStatus(want);
  if (status?.observedGeneration !== generation) out.push(`status.observedGeneration ${status?.observedGeneration}, want ${generation}`);
  if ((status?.readyEndpoints ?? 0) !== wantStatus.readyEndpoints || (status?.notReadyEndpoints ?? 0) !== wantStatus.notReadyEndpoints) {
    out.push(
      `status counts ${status?.readyEndpoints ?? 0} ready / ${status?.notReadyEndpoints ?? 0} not ready, ` +
        `want ${wantStatus.readyEndpoints} / ${wantStatus.notReadyEndpoints}`,
    );
  }
  if (status?.nodesReporting !== wantStatus.nodesReporting) out.push(`status.nodesReporting ${status?.nodesReporting}, want ${wantStatus.nodesReporting}`);
  for (const [type, wanted] of [["Ready", wantStatus.ready], ["NodesHealthy", wantStatus.nodesHealthy]] as const) {
    const condition = status?.conditions?.find((c) => c.type === type);
    if (condition?.status !== wanted.status || condition.reason !== wanted.reason || condition.observedGeneration !== generation) {
      out.push(
        `condition ${type} ${condition?.status}/${condition?.reason} (generation ${condition?.observedGeneration}), ` +
          `want ${wanted.status}/${wanted.reason} (generation ${generation})`,
      );
    }
  }
  return out;
}

/** What both Services must be: controlled by the NetService, headless, its ports and publishNotReadyAddresses. */
function compareService(label: string, service: ServiceJson, uid: string, ports: string, publishNotReady: boolean): string[] {
  const out: string[] = [];
  if (!ownedBy(service.metadata, uid)) out.push(`${label} is not controlled by the NetService`);
  if (service.spec.clusterIP !== "None") out.push(`${label} is not headless (clusterIP ${service.spec.clusterIP})`);
  if (normalPorts(service.spec.ports) !== ports) out.push(`${label} ports ${normalPorts(service.spec.ports)}, want ${ports}`);
  if ((service.spec.publishNotReadyAddresses ?? false) !== publishNotReady) {
    out.push(`${label} publishNotReadyAddresses ${service.spec.publishNotReadyAddresses}, want ${publishNotReady}`);
  }
  return out;
}

function compareEndpoints(want: ExpectedNetService, endpoints: EndpointsJson | undefined, ports: string): string[] {
  const name = want.netService.metadata.name;
  if (!endpoints) return [`Endpoints ${name} is missing`];
  const out: string[] = [];
  if (!ownedBy(endpoints.metadata, want.netService.metadata.uid)) out.push(`Endpoints ${name} is not controlled by the NetService`);
  if (endpoints.metadata.labels?.["endpointslice.kubernetes.io/skip-mirror"] !== "true") out.push(`Endpoints ${name} lacks skip-mirror=true`);
  if (endpoints.metadata.labels?.["service.kubernetes.io/headless"] !== "") out.push(`Endpoints ${name} lacks service.kubernetes.io/headless`);
  // Upstream's Endpoints controller leaves terminating pods out unless the Service publishes not-ready addresses.
  const publishNotReady = want.netService.spec.publishNotReadyAddresses ?? false;
  want = { ...want, addresses: new Map([...want.addresses].filter(([, address]) => !address.terminating || publishNotReady)) };
  const got = new Map<string, { ready: boolean; address: EndpointAddress }>();
  for (const subset of endpoints.subsets ?? []) {
    if ((subset.addresses?.length ?? 0) + (subset.notReadyAddresses?.length ?? 0) > 0 && normalPorts(subset.ports) !== ports) {
      out.push(`Endpoints ${name} ports ${normalPorts(subset.ports)}, want ${ports}`);
    }
    for (const [list, ready] of [[subset.addresses, true], [subset.notReadyAddresses, false]] as const) {
      for (const address of list ?? []) {
        const key = addressKey(address.ip, address.targetRef?.uid);
        if (got.has(key)) out.push(`Endpoints ${name} lists ${address.ip} of ${describeRef(address)} twice`);
        got.set(key, { ready, address });
      }
    }
  }
  const truncated = want.addresses.size > maxEndpointsAddresses;
  if (truncated !== (endpoints.metadata.annotations?.["endpoints.kubernetes.io/over-capacity"] === "truncated")) {
    out.push(`Endpoints ${name} over-capacity annotation ${endpoints.metadata.annotations?.["endpoints.kubernetes.io/over-capacity"]}, want ${truncated ? "truncated" : "none"}`);
  }
  if (truncated) {
    // Upstream's rule: 1000 addresses, ready ones first.
    const readyWanted = [...want.addresses.values()].filter((a) => a.ready).length;
    const readyGot = [...got.values()].filter((a) => a.ready).length;
    if (got.size !== maxEndpointsAddresses) out.push(`Endpoints ${name} holds ${got.size} addresses, want ${maxEndpointsAddresses} (truncated)`);
    if (readyGot !== Math.min(readyWanted, maxEndpointsAddresses)) out.push(`Endpoints ${name} keeps ${readyGot} ready addresses, want ${Math.min(readyWanted, maxEndpointsAddresses)}`);
    for (const [key, entry] of got) {
      const expected = want.addresses.get(key);
      if (!expected) out.push(`Endpoints ${name}: unexpected ${entry.address.ip} (${describeRef(entry.address)})`);
      else out.push(...addressMismatch(`Endpoints ${name}`, expected, entry.ready, entry.address));
    }
    return out;
  }
  for (const [key, expected] of want.addresses) {
    const entry = got.get(key);
    if (!entry) out.push(`Endpoints ${name}: missing ${describe(expected)}`);
    else out.push(...addressMismatch(`Endpoints ${name}`, expected, entry.ready, entry.address));
  }
  for (const [key, entry] of got) {
    if (!want.addresses.has(key)) out.push(`Endpoints ${name}: unexpected ${entry.address.ip} (${describeRef(entry.address)}, ${entry.ready ? "ready" : "not ready"})`);
  }
  return out;
}

function compareSlices(want: ExpectedNetService, all: readonly SliceJson[], ports: string): string[] {
  const { name, uid } = want.netService.metadata;
  const out: string[] = [];
  const labelledOurs = (slice: SliceJson) =>
    slice.metadata.labels?.["kubernetes.io/service-name"] === name &&
    slice.metadata.labels?.["endpointslice.kubernetes.io/managed-by"] === ourSliceManager;
  // What DNS servers read is every slice labelled for the Service; the NetService controls only its own.
  for (const slice of all) {
    if (labelledOurs(slice) && !slice.metadata.ownerReferences?.some((ref) => ref.uid === uid)) {
      out.push(`EndpointSlice ${slice.metadata.name} is labelled as the aggregator's for ${name} but not owned by the NetService`);
    }
    const manager = slice.metadata.labels?.["endpointslice.kubernetes.io/managed-by"];
    if (slice.metadata.labels?.["kubernetes.io/service-name"] === name && manager !== ourSliceManager) {
      out.push(`EndpointSlice ${slice.metadata.name} (managed by ${manager}) also publishes addresses under ${name}`);
    }
  }
  const ours = all.filter((slice) => labelledOurs(slice) || slice.metadata.ownerReferences?.some((ref) => ref.uid === uid));
  const got = new Map<
    string,
    { ip: string; slice: string; conditions: { ready?: boolean; serving?: boolean; terminating?: boolean }; hostname?: string; nodeName?: string; targetRef?: { name?: string; uid?: string } }
  >();
  for (const slice of ours) {
    const label = `EndpointSlice ${slice.metadata.name}`;
    if (!ownedBy(slice.metadata, uid)) {
      if (slice.metadata.ownerReferences?.some((ref) => ref.uid === uid)) out.push(`${label} is not controlled by the NetService`);
      continue;
    }
    if (slice.metadata.labels?.["kubernetes.io/service-name"] !== name) out.push(`${label} has service-name ${slice.metadata.labels?.["kubernetes.io/service-name"]}`);
    if (slice.metadata.labels?.["service.kubernetes.io/headless"] !== "") out.push(`${label} lacks service.kubernetes.io/headless`);
    if (slice.metadata.labels?.["endpointslice.kubernetes.io/managed-by"] !== ourSliceManager) {
      out.push(`${label} has managed-by ${slice.metadata.labels?.["endpointslice.kubernetes.io/managed-by"]}`);
    }
    if ((slice.endpoints?.length ?? 0) > maxEndpointsPerSlice) out.push(`${label} holds ${slice.endpoints?.length} endpoints (more than ${maxEndpointsPerSlice})`);
    if ((slice.endpoints?.length ?? 0) > 0 && normalPorts(slice.ports) !== ports) out.push(`${label} ports ${normalPorts(slice.ports)}, want ${ports}`);
    for (const endpoint of slice.endpoints ?? []) {
      for (const ip of endpoint.addresses) {
        const family = ip.includes(":") ? "IPv6" : "IPv4";
        if (family !== slice.addressType) out.push(`${label} (${slice.addressType}) holds ${family} address ${ip}`);
        const key = addressKey(ip, endpoint.targetRef?.uid);
        const previous = got.get(key);
        if (previous) out.push(`${ip} of ${endpoint.targetRef?.name} is in ${previous.slice} and in ${slice.metadata.name}`);
        got.set(key, { ip, slice: slice.metadata.name, conditions: endpoint.conditions ?? {}, ...endpoint });
      }
    }
  }
  for (const [key, expected] of want.addresses) {
    const entry = got.get(key);
    if (!entry) {
      out.push(`EndpointSlices: missing ${describe(expected)}`);
      continue;
    }
    const c = entry.conditions;
    if (c.ready !== expected.ready || c.serving !== expected.serving || c.terminating !== expected.terminating) {
      out.push(
        `EndpointSlice ${entry.slice}: ${expected.ip} (${expected.pod}) conditions ready=${c.ready} serving=${c.serving} terminating=${c.terminating}, ` +
          `want ${expected.ready}/${expected.serving}/${expected.terminating}`,
      );
    }
    if (entry.targetRef?.name !== expected.pod) out.push(`EndpointSlice ${entry.slice}: ${expected.ip} names pod ${entry.targetRef?.name}, want ${expected.pod}`);
    if (entry.nodeName !== expected.node) out.push(`EndpointSlice ${entry.slice}: ${expected.ip} on node ${entry.nodeName}, want ${expected.node}`);
    if (entry.hostname !== expected.hostname) out.push(`EndpointSlice ${entry.slice}: ${expected.ip} (${expected.pod}) hostname ${entry.hostname}, want ${expected.hostname}`);
  }
  for (const [key, entry] of got) {
    if (!want.addresses.has(key)) out.push(`EndpointSlice ${entry.slice}: unexpected ${entry.ip} (${entry.targetRef?.name} on ${entry.nodeName})`);
  }
  return out;
}

function addressMismatch(where: string, expected: ExpectedAddress, ready: boolean, address: EndpointAddress): string[] {
  const out: string[] = [];
  if (ready !== expected.ready) out.push(`${where}: ${expected.ip} (${expected.pod}) is ${ready ? "ready" : "not ready"}, want ${expected.ready ? "ready" : "not ready"}`);
  if (address.targetRef?.name !== expected.pod) out.push(`${where}: ${expected.ip} names pod ${address.targetRef?.name}, want ${expected.pod}`);
  if (address.nodeName !== expected.node) out.push(`${where}: ${expected.ip} on node ${address.nodeName}, want ${expected.node}`);
  if (address.hostname !== expected.hostname) out.push(`${where}: ${expected.ip} (${expected.pod}) hostname ${address.hostname}, want ${expected.hostname}`);
  return out;
}

/** The truth, except that pods on stale nodes are held to an earlier truth. */
function holdStaleNodes(now: Map<string, ExpectedNetService>, stale: StaleNodes): Map<string, ExpectedNetService> {
  const nodes = new Set(stale.nodes);
  const result = new Map<string, ExpectedNetService>();
  for (const [key, current] of now) {
    const addresses = new Map<string, ExpectedAddress>();
    for (const [id, address] of current.addresses) if (!nodes.has(address.node)) addresses.set(id, address);
    const publishNotReady = current.netService.spec.publishNotReadyAddresses ?? false;
    for (const [id, address] of stale.as.get(key)?.addresses ?? []) {
      if (!nodes.has(address.node)) continue;
      addresses.set(id, stale.notServing ? { ...address, serving: false, nodeServes: false, ready: publishNotReady } : address);
    }
    const pods = new Map([...addresses.values()].map((a) => [a.podUid, a.ready]));
    const readyPods = [...pods.values()].filter(Boolean).length;
    result.set(key, { ...current, addresses, readyPods, notReadyPods: pods.size - readyPods });
  }
  return result;
}

function ownedBy(metadata: Meta, uid: string): boolean {
  return metadata.ownerReferences?.some((ref) => ref.uid === uid && ref.controller === true) ?? false;
}

function normalPorts(ports: readonly (Port | ExpectedPort)[] | undefined): string {
  return JSON.stringify(
    (ports ?? []).map((p) => `${p.name ?? ""}:${p.port}/${p.protocol ?? "TCP"}${p.appProtocol ? ` appProtocol=${p.appProtocol}` : ""}`).sort(),
  );
}

/** How much the truth held: what a check compared the cluster against. */
export function comparedOf(expected: Iterable<ExpectedNetService>): Compared {
  const compared: Compared = { netServicesWithEndpoints: 0, addresses: { IPv4: 0, IPv6: 0 }, hostnames: 0, byNetService: {} };
  for (const want of expected) {
    const families = { IPv4: 0, IPv6: 0 };
    for (const address of want.addresses.values()) {
      families[address.family]++;
      if (address.hostname) compared.hostnames++;
    }
    compared.byNetService[want.key] = families;
    compared.addresses.IPv4 += families.IPv4;
    compared.addresses.IPv6 += families.IPv6;
    if (want.addresses.size > 0) compared.netServicesWithEndpoints++;
  }
  return compared;
}

/** Each way `compared` falls short of `minimum`, as "what: got, want at least n". */
export function shortfalls(compared: Compared, minimum: Minimum): string[] {
  const out: string[] = [];
  const atLeast = (what: string, got: number, want: number) => {
    if (got < want) out.push(`${what}: ${got}, want at least ${want}`);
  };
  atLeast("NetServices with endpoints", compared.netServicesWithEndpoints, minimum.netServicesWithEndpoints);
  atLeast("IPv4 addresses", compared.addresses.IPv4, minimum.addresses.IPv4);
  atLeast("IPv6 addresses", compared.addresses.IPv6, minimum.addresses.IPv6);
  atLeast("addresses with a hostname", compared.hostnames, minimum.hostnames);
  for (const [key, families] of Object.entries(minimum.byNetService)) {
    for (const [family, want] of Object.entries(families) as [Family, number][]) {
      atLeast(`${key} ${family} addresses`, compared.byNetService[key]?.[family] ?? 0, want);
    }
  }
  return out;
}

/** One line: "3 NetServices with endpoints; IPv4 40, IPv6 25; 6 hostnames; churn/core-all 20+15, ..." */
export function describeCompared(compared: Compared): string {
  const per = Object.entries(compared.byNetService).map(([key, f]) => `${key} ${f.IPv4} IPv4 + ${f.IPv6} IPv6`);
  return (
    `${compared.netServicesWithEndpoints} NetServices with endpoints; ${compared.addresses.IPv4} IPv4 and ${compared.addresses.IPv6} IPv6 addresses; ` +
    `${compared.hostnames} with a hostname; ${per.join(", ")}`
  );
}

function sortedObject(value: Record<string, string> | undefined): [string, string][] {
  return Object.entries(value ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
}

function describe(address: ExpectedAddress): string {
  return `${address.ip} (${address.pod} on ${address.node}, ${address.ready ? "ready" : "not ready"})`;
}

function describeRef(address: EndpointAddress): string {
  return `${address.targetRef?.name ?? "?"} on ${address.nodeName ?? "?"}`;
}
