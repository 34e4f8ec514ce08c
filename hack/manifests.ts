// YAML manifests as objects, applied with server-side apply: what the demo,
// the tests and the benchmarks use to put CRDs, NADs and samples into a
// cluster.
import { readFile } from "node:fs/promises";
import { parseAllDocuments } from "yaml";
import type { Applier } from "../common/kube/apply.ts";
import { KubeApiError, type KubeHttp } from "../common/kube/http.ts";
import type { KubeObject } from "../common/kube/object.ts";

/** Every non-empty document of a YAML file (or several), in order. */
export async function loadManifests(...files: string[]): Promise<KubeObject[]> {
  const objects: KubeObject[] = [];
  for (const file of files) {
    for (const document of parseAllDocuments(await readFile(file, "utf8"))) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`);
      const value = document.toJS() as KubeObject | null;
      if (value) objects.push(value);
    }
  }
  return objects;
}

/**
 * Applies objects in order; namespaced objects without a namespace go to
 * `namespace`. CRDs are waited for until established, so a later object of
 * that kind in the same call can be applied.
 */
export async function applyManifests(applier: Applier, http: KubeHttp, objects: KubeObject[], namespace = "default"): Promise<KubeObject[]> {
  const applied: KubeObject[] = [];
  for (const object of objects) {
    const withNamespace = object.kind === "Namespace" || object.kind === "CustomResourceDefinition" || object.metadata?.namespace
      ? object
      : { ...object, metadata: { ...object.metadata, namespace } };
    applied.push(await applier.apply(withNamespace));
    if (object.kind === "CustomResourceDefinition") await waitForCrd(http, object.metadata!.name!);
  }
  return applied;
}

/**
 * Waits until the CRD is established and its objects can be listed: for a
 * moment after that, the API server still answers lists with 429 "storage is
 * (re)initializing" while the watch cache fills, and a program started then
 * logs a failed first list. A cluster that has had the CRD for a while never
 * shows this; the local tools install it just before they start programs.
 */
export async function waitForCrd(http: KubeHttp, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let waitingFor = "established";
  for (;;) {
    const crd = await http.request<Crd>({ method: "GET", path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}` });
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) {
      const version = crd.spec?.versions?.find((v) => v.storage)?.name ?? crd.spec?.versions?.[0]?.name;
      waitingFor = "listable (its storage initialized)";
      try {
        await http.request({ method: "GET", path: `/apis/${crd.spec?.group}/${version}/${crd.spec?.names?.plural}`, query: { limit: 1 } });
        return;
      } catch (error) {
        if (!(error instanceof KubeApiError) || error.code !== 429) throw error;
      }
    }
    if (Date.now() > deadline) throw new Error(`CustomResourceDefinition ${name} not ${waitingFor} after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

type Crd = {
  spec?: { group?: string; names?: { plural?: string }; versions?: { name: string; storage?: boolean }[] };
  status?: { conditions?: { type: string; status: string }[] };
};

/**
 * The local stand-ins of public images, from NETSERVICE_E2E_IMAGES as
 * `hack/kind/images.sh workloads` prints it ("PUBLIC=LOCAL PUBLIC=LOCAL"):
 * what a cluster that reaches no registry runs instead.
 */
export function parseImageMap(value: string): Map<string, string> {
  const images = new Map<string, string>();
  for (const pair of value.split(/\s+/).filter(Boolean)) {
    const separator = pair.indexOf("=");
    if (separator <= 0 || separator === pair.length - 1) throw new Error(`NETSERVICE_E2E_IMAGES: "${pair}" is not PUBLIC=LOCAL`);
    images.set(pair.slice(0, separator), pair.slice(separator + 1));
  }
  return images;
}

type PodSpecLike = { containers?: { image?: string }[]; initContainers?: { image?: string }[] };

/** The objects with each container image the map names replaced (Pods, and the pod templates of workloads). */
export function withLocalImages<T extends KubeObject>(objects: T[], images: Map<string, string>): T[] {
  if (images.size === 0) return objects;
  const swap = (spec: PodSpecLike | undefined): PodSpecLike | undefined => spec && {
    ...spec,
    ...(spec.containers && { containers: spec.containers.map((c) => ({ ...c, image: images.get(c.image ?? "") ?? c.image })) }),
    ...(spec.initContainers && { initContainers: spec.initContainers.map((c) => ({ ...c, image: images.get(c.image ?? "") ?? c.image })) }),
  };
  return objects.map((object) => {
    const spec = object.spec as { template?: { spec?: PodSpecLike } } & PodSpecLike | undefined;
    if (object.kind === "Pod") return { ...object, spec: swap(spec) };
    if (spec?.template?.spec) return { ...object, spec: { ...spec, template: { ...spec.template, spec: swap(spec.template.spec) } } };
    return object;
  });
}
