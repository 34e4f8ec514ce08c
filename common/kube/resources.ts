// API paths of resources, and the kind -> resource mapping that apply and
// delete need, from a table of built-in kinds or else from API discovery.
//
//   resourcePath({apiVersion, plural, namespace?, name?, subresource?}): string
//   new ResourceResolver(http)
//     resolve(apiVersion, kind): Promise<{plural, namespaced}>   discovery is cached per apiVersion
//     pathOf(obj, subresource?): Promise<string>                  path of an object from its apiVersion/kind/metadata
//     collectionPathOf(obj): Promise<string>                      path of the collection an object is created in
//
//   resourcePath({ apiVersion: "v1", plural: "pods", namespace: "default" }) // "/api/v1/namespaces/default/pods"
//   await new ResourceResolver(clients.http).pathOf(slice)                   // ".../endpointslices/corens-abc12"
import type { KubeHttp } from "./http.ts";
import type { KubeObject } from "./object.ts";

export interface ResourceRef {
  /** "v1" for the core group, else "group/version". */
  apiVersion: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export function resourcePath(ref: ResourceRef): string {
  const root = ref.apiVersion.includes("/") ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
  const namespace = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : "";
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : "";
  const subresource = ref.name && ref.subresource ? `/${ref.subresource}` : "";
  return `${root}${namespace}/${ref.plural}${name}${subresource}`;
}

export interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

const builtIn: Record<string, ResourceInfo> = {
  "v1/Pod": { plural: "pods", namespaced: true },
  "v1/Service": { plural: "services", namespaced: true },
  "v1/Endpoints": { plural: "endpoints", namespaced: true },
  "v1/Event": { plural: "events", namespaced: true },
  "v1/ConfigMap": { plural: "configmaps", namespaced: true },
  "v1/Namespace": { plural: "namespaces", namespaced: false },
  "v1/Node": { plural: "nodes", namespaced: false },
  "discovery.k8s.io/v1/EndpointSlice": { plural: "endpointslices", namespaced: true },
  "coordination.k8s.io/v1/Lease": { plural: "leases", namespaced: true },
  "events.k8s.io/v1/Event": { plural: "events", namespaced: true },
};

interface APIResourceList {
  resources?: { name: string; kind: string; namespaced: boolean }[];
}

export class ResourceResolver {
  private readonly http: KubeHttp;
  private readonly discovered = new Map<string, Promise<Map<string, ResourceInfo>>>();

  constructor(http: KubeHttp) {
    this.http = http;
  }

  async resolve(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const known = builtIn[`${apiVersion}/${kind}`];
    if (known) return known;
    let kinds = this.discovered.get(apiVersion);
    if (!kinds) {
      kinds = this.discover(apiVersion);
      this.discovered.set(apiVersion, kinds);
    }
    let info: ResourceInfo | undefined;
    try {
      info = (await kinds).get(kind);
    } catch (err) {
      this.discovered.delete(apiVersion);
      throw err;
    }
    if (!info) {
      // Forget the answer so that a CRD installed later is found on the next call.
      this.discovered.delete(apiVersion);
      throw new Error(`the API server serves no kind ${kind} in ${apiVersion}; is its CustomResourceDefinition installed?`);
    }
    return info;
  }

  async pathOf(obj: KubeObject, subresource?: string): Promise<string> {
    const name = obj.metadata?.name;
    if (!name) throw new Error(`object needs apiVersion, kind and metadata.name, got ${obj.apiVersion}/${obj.kind} "${name}"`);
    return resourcePath({ ...(await this.collectionOf(obj)), name, subresource });
  }

  async collectionPathOf(obj: KubeObject): Promise<string> {
    return resourcePath(await this.collectionOf(obj));
  }

  private async collectionOf(obj: KubeObject): Promise<ResourceRef> {
    const { apiVersion, kind } = obj;
    if (!apiVersion || !kind) throw new Error(`object needs apiVersion, kind and metadata.name, got ${apiVersion}/${kind} "${obj.metadata?.name}"`);
    const info = await this.resolve(apiVersion, kind);
    const namespace = obj.metadata?.namespace;
    if (info.namespaced && !namespace) throw new Error(`${kind} ${obj.metadata?.name} needs metadata.namespace`);
    return { apiVersion, plural: info.plural, namespace: info.namespaced ? namespace : undefined };
  }

  private async discover(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    const path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const list = await this.http.request<APIResourceList>({ method: "GET", path });
    const kinds = new Map<string, ResourceInfo>();
    for (const r of list.resources ?? []) {
      if (!r.name.includes("/")) kinds.set(r.kind, { plural: r.name, namespaced: r.namespaced });
    }
    return kinds;
  }
}
