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
    case "Service":
      return { ...base, spec: { clusterIP: "None" } };
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
