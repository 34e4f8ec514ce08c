// The NetworkAttachmentDefinition CRD the fake Multus reads, installed from
// hack/crds/ when the cluster lacks it, and waited for until it is served.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "yaml";
import { isConflict, isNotFound, realClock, type Clock, type KubeClients } from "./kube.ts";

export const nadCrdName = "network-attachment-definitions.k8s.cni.cncf.io";
export const nadCrdFile = path.resolve(import.meta.dirname, "..", "crds", "network-attachment-definition.yaml");

const crdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

type Crd = { status?: { conditions?: { type: string; status: string }[] } };

export async function ensureNadCrd(clients: Pick<KubeClients, "http">, clock: Clock = realClock, timeoutMs = 30_000): Promise<void> {
  const { http } = clients;
  try {
    await http.request({ method: "GET", path: `${crdPath}/${nadCrdName}` });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    const manifest: unknown = parse(await readFile(nadCrdFile, "utf8"));
    try {
      await http.request({ method: "POST", path: crdPath, body: manifest });
    } catch (createError) {
      if (!isConflict(createError)) throw createError;
    }
  }
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    const crd = await http.request<Crd>({ method: "GET", path: `${crdPath}/${nadCrdName}` });
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    if (clock.now() > deadline) throw new Error(`CRD ${nadCrdName} not established after ${timeoutMs / 1000} s`);
    await new Promise<void>((resolve) => clock.setTimer(resolve, 100));
  }
}
