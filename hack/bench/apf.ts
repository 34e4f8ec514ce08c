// API Priority and Fairness in the benchmark: both sides queue in the same
// priority level, and the run says which, as the API server classified them.
//
// kube-controller-manager runs each controller as its own service account in
// kube-system (--use-service-account-credentials), which the built-in
// FlowSchema kube-system-service-accounts (precedence 900) puts in the
// workload-high priority level. Our programs, as deployed, are service
// accounts in netservice-system: the FlowSchema service-accounts (9000) puts
// them in workload-low, which has fewer seats and gives way to workload-high.
// A fair race puts both in one level: `controllersFlowSchema` places our two
// service accounts beside kube-controller-manager's, in workload-high, each
// user a flow of its own as kube-system-service-accounts does. An operator
// who wants the same in a cluster applies the same FlowSchema.
//
//   await applier.apply(controllersFlowSchema("netservice-system"))
//   const classes = await classify(server, ca, identities, admin)   // { agent: {flowSchema, priorityLevel}, ... }
//   unfairness(classes)                                             // undefined, or what differs
import { request } from "node:https";
import type { KubeHttp } from "../../common/kube/http.ts";
import type { KubeObject } from "../../common/kube/object.ts";

export const controllersFlowSchemaName = "netservice-controllers";
/** Where kube-controller-manager's controllers queue (kube-system-service-accounts' level). */
export const controllersPriorityLevel = "workload-high";

export function controllersFlowSchema(systemNamespace: string): KubeObject {
  const serviceAccount = (name: string) => ({ kind: "ServiceAccount", serviceAccount: { name, namespace: systemNamespace } });
  return {
    apiVersion: "flowcontrol.apiserver.k8s.io/v1",
    kind: "FlowSchema",
    metadata: { name: controllersFlowSchemaName },
    spec: {
      priorityLevelConfiguration: { name: controllersPriorityLevel },
      // kube-system-service-accounts' own precedence: the same place in the order, for other service accounts.
      matchingPrecedence: 900,
      distinguisherMethod: { type: "ByUser" },
      rules: [{
        subjects: [serviceAccount("netservice-agent"), serviceAccount("netservice-aggregator")],
        resourceRules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"] }],
        nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }],
      }],
    },
  };
}

/** How a program reaches the API server: its own bearer token, or the admin's certificate impersonating a user. */
export type Identity = { token: string } | { impersonate: string; cert: Buffer; key: Buffer };

export type ApfClass = { flowSchema: string; priorityLevel: string };

/** Our programs' and kube-controller-manager's: the two sides compared. */
export type ApfClasses = Record<"agent" | "aggregator" | "kube-endpointslice" | "kube-endpoints", ApfClass>;

/**
 * The class APF gives each identity's requests, read from the headers it
 * puts on every response it classifies (X-Kubernetes-PF-FlowSchema-UID,
 * X-Kubernetes-PF-PriorityLevel-UID), named through the admin's lists.
 */
export async function classify(
  server: string,
  ca: Buffer,
  identities: Record<keyof ApfClasses, Identity>,
  admin: KubeHttp,
): Promise<ApfClasses> {
  const uids = Object.fromEntries(
    await Promise.all(Object.entries(identities).map(async ([name, identity]) => [name, await classifiedAs(server, ca, identity)] as const)),
  ) as Record<keyof ApfClasses, { flowSchema: string; priorityLevel: string }>;
  const names = async (plural: string) =>
    (await admin.request<{ items: KubeObject[] }>({ method: "GET", path: `/apis/flowcontrol.apiserver.k8s.io/v1/${plural}` })).items;
  return nameClasses(uids, await names("flowschemas"), await names("prioritylevelconfigurations"));
}

/** UIDs to names; an unknown uid stays visible as such. */
export function nameClasses<K extends string>(
  uids: Record<K, { flowSchema: string; priorityLevel: string }>,
  flowSchemas: readonly KubeObject[],
  priorityLevels: readonly KubeObject[],
): Record<K, ApfClass> {
  const byUid = (objects: readonly KubeObject[]) => new Map(objects.map((o) => [o.metadata?.uid ?? "", o.metadata?.name ?? ""]));
  const schemas = byUid(flowSchemas);
  const levels = byUid(priorityLevels);
  const out = {} as Record<K, ApfClass>;
  for (const [name, { flowSchema, priorityLevel }] of Object.entries(uids) as [K, { flowSchema: string; priorityLevel: string }][]) {
    out[name] = { flowSchema: schemas.get(flowSchema) ?? `uid ${flowSchema || "(none)"}`, priorityLevel: levels.get(priorityLevel) ?? `uid ${priorityLevel || "(none)"}` };
  }
  return out;
}

/** Undefined when our programs queue in kube-controller-manager's controllers' priority level; else what differs. */
export function unfairness(classes: ApfClasses): string | undefined {
  const kube = new Set([classes["kube-endpointslice"].priorityLevel, classes["kube-endpoints"].priorityLevel]);
  const differing = (["agent", "aggregator"] as const).filter((program) => !kube.has(classes[program].priorityLevel) || kube.size > 1);
  if (differing.length === 0) return undefined;
  const describe = (name: keyof ApfClasses) => `${name} in ${classes[name].priorityLevel} (FlowSchema ${classes[name].flowSchema})`;
  return `not the same API priority: ${(Object.keys(classes) as (keyof ApfClasses)[]).map(describe).join(", ")}`;
}

function classifiedAs(server: string, ca: Buffer, identity: Identity): Promise<{ flowSchema: string; priorityLevel: string }> {
  const header = (value: string | string[] | undefined) => (typeof value === "string" ? value : "");
  return new Promise((resolve, reject) => {
    // Any request is classified before it is authorized: a 403 carries the headers too.
    const req = request(`${server}/api/v1/namespaces/default/pods?limit=1`, {
      ca,
      timeout: 10_000,
      ...("token" in identity
        ? { headers: { authorization: `Bearer ${identity.token}` } }
        : { cert: identity.cert, key: identity.key, headers: { "impersonate-user": identity.impersonate } }),
    }, (res) => {
      res.resume();
      resolve({ flowSchema: header(res.headers["x-kubernetes-pf-flowschema-uid"]), priorityLevel: header(res.headers["x-kubernetes-pf-prioritylevel-uid"]) });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.end();
  });
}
