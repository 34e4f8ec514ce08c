// NetService -> its two headless Services.
import type { V1Service } from "@kubernetes/client-node";
import { templateServiceName, type NetService } from "./api.ts";
import { comparablePorts, metadataNeedsWrite, ownedMetadata, portsOf } from "./desired.ts";
import { jsonEqual } from "./json-equal.ts";

export type DesiredServices = {
  /** `<name>-template`: with the selector; Kubernetes publishes the pods' primary addresses for it. */
  template: V1Service;
  /** `<name>`: no selector; its Endpoints and EndpointSlices are ours. */
  headless: V1Service;
};

/**
 * Both Services are headless: DNS answers with the endpoints' addresses
 * directly, which is what workloads on a secondary network need, since a
 * cluster IP would be routed over the cluster network. Neither needs ports
 * (a headless Service is valid without any); when given, they feed SRV records.
 */
export function desiredServices(netService: NetService): DesiredServices {
  const ports = portsOf(netService);
  const common = {
    clusterIP: "None",
    publishNotReadyAddresses: netService.spec.publishNotReadyAddresses,
    ...(ports.length > 0 ? { ports } : {}),
  };
  return {
    template: {
      apiVersion: "v1",
      kind: "Service",
      metadata: ownedMetadata(netService, templateServiceName(netService)),
      spec: { ...common, selector: { ...netService.spec.selector } },
    },
    headless: {
      apiVersion: "v1",
      kind: "Service",
      metadata: ownedMetadata(netService, netService.metadata.name),
      spec: { ...common, ...ipFamilyFields(netService) },
    },
  };
}

/**
 * Whether applying `desired` would change a field we own. Fields the API
 * server fills in (clusterIPs, type, sessionAffinity, targetPort, ...) are
 * not ours and are ignored; so are ipFamilies while we leave them unset.
 */
export function serviceNeedsWrite(desired: V1Service, existing: V1Service | undefined): boolean {
  if (!existing) return true;
  return (
    metadataNeedsWrite(desired.metadata, existing.metadata, []) ||
    !jsonEqual(ownedSpecFields(desired, desired), ownedSpecFields(existing, desired))
  );
}

/**
 * A JSON merge patch that puts back our selector and ports where someone
 * else changed them, or undefined when they are as desired. Server-side
 * apply cannot do it alone: it never removes what another manager added (a
 * selector on the selectorless Service, which makes Kubernetes publish the
 * pods' primary addresses under its name; an extra port or selector key), and
 * a port renumbered by hand makes the apply itself fail (two ports of one
 * name). Sent before the apply, guarded by the resourceVersion it was
 * computed from.
 */
export function serviceRepairPatch(desired: V1Service, existing: V1Service): object | undefined {
  const wanted = desired.spec?.selector;
  const present = existing.spec?.selector ?? {};
  const selectorDiffers = !jsonEqual(wanted ?? {}, present);
  const portsDiffer = !jsonEqual(comparablePorts(desired.spec?.ports), comparablePorts(existing.spec?.ports));
  if (!selectorDiffers && !portsDiffer) return undefined;
  const selector = wanted ? { ...Object.fromEntries(Object.keys(present).map((key) => [key, null])), ...wanted } : null;
  return {
    metadata: { resourceVersion: existing.metadata?.resourceVersion },
    spec: { selector, ports: desired.spec?.ports ?? null },
  };
}

// The API server defaults a selectorless headless Service to
// RequireDualStack, which is what "every family found" means, so an
// unrestricted NetService leaves both fields to it. A restriction to one
// family is SingleStack with that family; both families must be dual-stack.
function ipFamilyFields(netService: NetService): { ipFamilyPolicy?: string; ipFamilies?: string[] } {
  const families = [...new Set(netService.spec.ipFamilies ?? [])];
  if (families.length === 0) return {};
  return {
    ipFamilyPolicy: families.length > 1 ? "RequireDualStack" : "SingleStack",
    ipFamilies: families,
  };
}

function ownedSpecFields(service: V1Service, desired: V1Service): object {
  const spec = service.spec ?? {};
  const setsFamilies = desired.spec?.ipFamilyPolicy !== undefined;
  return {
    clusterIP: spec.clusterIP,
    selector: spec.selector && Object.keys(spec.selector).length > 0 ? spec.selector : undefined,
    ports: comparablePorts(spec.ports),
    publishNotReadyAddresses: spec.publishNotReadyAddresses ?? false,
    ipFamilyPolicy: setsFamilies ? spec.ipFamilyPolicy : undefined,
    ipFamilies: setsFamilies ? spec.ipFamilies : undefined,
  };
}
