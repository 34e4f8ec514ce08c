// How an owned object comes into existence without ever adopting someone
// else's. Server-side apply creates or updates, whichever applies, so an
// apply for a name the cache does not hold could land on a Service a user
// created a moment ago (or one the label-selected caches never see) and take
// it over. A create (POST) cannot: it fails with 409 AlreadyExists. So the
// aggregator creates a skeleton, then applies the full object to that uid.
//
// The skeleton holds only what the aggregator never removes or changes
// afterwards (name, labels, controller reference, and what is immutable or
// required anyway). A create records its fields under an "Update" entry of the
// field manager, which later applies do not clean up: a port or annotation in
// the skeleton would stay on the object after the NetService dropped it.
//
// One exception: the template Service's selector. The API server chooses a
// Service's IP families when it creates it, from whether it has a selector: a
// headless Service without one gets both families on any cluster, and adding
// a selector to it afterwards is refused on a single-stack cluster ("this
// cluster is not configured for dual-stack services"), which a kind cluster
// showed. So the template is created with its selector, and gets the
// cluster's default families as any headless Service with a selector does.
// The selector never outlives a change: the repair patch
// (serviceRepairPatch) makes it exactly the NetService's before each apply.
import type { KubeObject } from "../common/kube/object.ts";
import { resourcePath } from "../common/kube/resources.ts";
import type { OwnedKind } from "./plan.ts";

export function creationSkeleton(kind: OwnedKind, desired: KubeObject): KubeObject {
  const { name, namespace, labels, ownerReferences } = desired.metadata ?? {};
  const base = {
    apiVersion: desired.apiVersion,
    kind,
    metadata: { name, namespace, labels, ownerReferences },
  };
  switch (kind) {
    case "Service": {
      const selector = (desired.spec as { selector?: Record<string, string> } | undefined)?.selector;
      return { ...base, spec: { clusterIP: "None", ...(selector ? { selector } : {}) } };
    }
    case "Endpoints":
      return base;
    case "EndpointSlice":
      return { ...base, addressType: desired.addressType, endpoints: [] };
  }
}

const plurals: Record<OwnedKind, { apiVersion: string; plural: string }> = {
  Service: { apiVersion: "v1", plural: "services" },
  Endpoints: { apiVersion: "v1", plural: "endpoints" },
  EndpointSlice: { apiVersion: "discovery.k8s.io/v1", plural: "endpointslices" },
};

/** Collection path of a kind in a namespace, or the path of one object when name is given. */
export function ownedPath(kind: OwnedKind, namespace: string, name?: string): string {
  return resourcePath({ ...plurals[kind], namespace, ...(name ? { name } : {}) });
}

/** The cluster-wide collection, for informers. */
export function ownedCollectionPath(kind: OwnedKind): string {
  return resourcePath(plurals[kind]);
}
