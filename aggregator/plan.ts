// NetService + merged view + the objects that exist -> what to create,
// update and delete, and what to tell the user. Pure: the reconciler feeds it
// cached state and carries the actions out.
import type { V1EndpointSlice, V1Endpoints, V1Service } from "@kubernetes/client-node";
import { netServiceConditionReasons, type NetService } from "../common/api.ts";
import { desiredEndpoints, endpointsNeedsWrite } from "../common/desired-endpoints.ts";
import { desiredServices, serviceNeedsWrite } from "../common/desired-services.ts";
import { desiredEndpointSlices, sliceNeedsWrite } from "../common/desired-slices.ts";
import type { StatusProblem } from "../common/desired-status.ts";
import type { KubeObject } from "../common/kube/object.ts";
import type { MergedNetService } from "../common/merge.ts";
import { controls, decideObject } from "./ownership.ts";

export type OwnedKind = "Service" | "Endpoints" | "EndpointSlice";

export const ownedKinds: readonly OwnedKind[] = ["Service", "Endpoints", "EndpointSlice"];

/** What exists in the NetService's namespace, as far as the aggregator knows. */
export interface Observed {
  /** The object of that kind and name, whoever owns it. */
  get(kind: OwnedKind, name: string): KubeObject | undefined;
  /** Objects of that kind that belong to the NetService (controlled by it, or labelled for it). */
  indexed(kind: OwnedKind): KubeObject[];
}

export type Action =
  | { verb: "create"; kind: OwnedKind; desired: KubeObject }
  | { verb: "update"; kind: OwnedKind; desired: KubeObject; existing: KubeObject }
  | { verb: "delete"; kind: OwnedKind; existing: KubeObject; ownerUid: string; why: "obsolete" | "predecessor" };

export type Plan = {
  /** Creates and updates first (Services, Endpoints, slices), then deletes, so nothing published blinks out. */
  actions: Action[];
  problems: StatusProblem[];
  /** False when the Service named like the NetService is someone else's: no endpoint is published then. */
  publishing: boolean;
};

/**
 * The plan for one NetService. Never adopts, changes or deletes an object the
 * NetService does not control: a name held by someone else is a problem for
 * the status. If the Service named like the NetService is someone else's, no
 * Endpoints or EndpointSlices are written at all (and ours are removed),
 * since they would publish our addresses as that Service's endpoints.
 */
export function planNetService(netService: NetService, merged: MergedNetService, observed: Observed): Plan {
  const writes: Action[] = [];
  const deletes: Action[] = [];
  const problems: StatusProblem[] = [];
  const wanted: Record<OwnedKind, Set<string>> = { Service: new Set(), Endpoints: new Set(), EndpointSlice: new Set() };

  const consider = (kind: OwnedKind, desiredObject: object, needsWrite: (existing: KubeObject) => boolean, role: Role) => {
    const desired = desiredObject as KubeObject;
    const name = desired.metadata?.name ?? "";
    wanted[kind].add(name);
    const existing = observed.get(kind, name);
    const decided = decideObject(netService, existing, () => existing !== undefined && needsWrite(existing));
    if (decided.decision === "create") writes.push({ verb: "create", kind, desired });
    if (decided.decision === "update" && existing) writes.push({ verb: "update", kind, desired, existing });
    if (decided.decision === "replacePredecessor" && existing) {
      deletes.push({ verb: "delete", kind, existing, ownerUid: decided.predecessorUid, why: "predecessor" });
    }
    if (decided.decision === "taken") problems.push(takenProblem(netService, kind, name, role, decided.holder));
    return decided;
  };

  const services = desiredServices(netService);
  const headless = consider("Service", services.headless, (e) => serviceNeedsWrite(services.headless, asService(e)), "headless");
  consider("Service", services.template, (e) => serviceNeedsWrite(services.template, asService(e)), "template");

  if (headless.decision !== "taken") {
    const endpoints = desiredEndpoints(netService, merged, merged.triggerTime);
    consider("Endpoints", endpoints, (e) => endpointsNeedsWrite(endpoints, asEndpoints(e)), "endpoints");
    const ourSlices = observed
      .indexed("EndpointSlice")
      .filter((slice) => controls(netService, slice));
    const { slices } = desiredEndpointSlices(netService, merged, merged.triggerTime, ourSlices.map(asSlice));
    for (const slice of slices) {
      consider("EndpointSlice", slice, (e) => sliceNeedsWrite(slice, asSlice(e)), "slice");
    }
  }

  for (const kind of ownedKinds) {
    for (const existing of observed.indexed(kind)) {
      const name = existing.metadata?.name ?? "";
      if (wanted[kind].has(name)) continue;
      if (!controls(netService, existing)) continue;
      deletes.push({ verb: "delete", kind, existing, ownerUid: netService.metadata.uid, why: "obsolete" });
    }
  }
  return { actions: [...writes, ...deletes], problems, publishing: headless.decision !== "taken" };
}

type Role = "headless" | "template" | "endpoints" | "slice";

function takenProblem(
  netService: NetService,
  kind: OwnedKind,
  name: string,
  role: Role,
  holder: string | undefined,
): StatusProblem {
  const object = `${kind} ${netService.metadata.namespace}/${name}`;
  const whose = holder ? ` (it belongs to ${holder})` : "";
  const head = `${object} already exists and is not owned by this NetService${whose}, so it is left untouched`;
  const fix: Record<Role, string> = {
    headless:
      "; no addresses are published, since they would become that Service's endpoints. " +
      "Delete or rename that Service, or create the NetService under another name",
    template:
      "; the template Service (selector and primary addresses) is missing. " +
      "Set spec.templateServiceName to an unused name, or delete or rename that Service",
    endpoints:
      "; clients of the Endpoints API do not see the addresses (EndpointSlices are published). " +
      "Delete that Endpoints object so that the aggregator can publish its own",
    slice:
      "; the endpoints that belong in it are not published. Delete or rename that EndpointSlice",
  };
  return { reason: netServiceConditionReasons.serviceNameTaken, message: `${head}${fix[role]}` };
}

// Cached objects are the API server's JSON, which the generated types describe.
function asService(object: KubeObject): V1Service {
  return object as V1Service;
}

function asEndpoints(object: KubeObject): V1Endpoints {
  return object as V1Endpoints;
}

function asSlice(object: KubeObject): V1EndpointSlice {
  return object as unknown as V1EndpointSlice;
}
