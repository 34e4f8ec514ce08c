// Which networks a pod asked Multus for, and whether a network-status entry
// belongs to a NetService's network (the rule of docs/matching.md).
import { z } from "zod";

/** A network the pod requested, with the namespace Multus resolved it in. */
export type RequestedNetwork = {
  namespace: string;
  name: string;
  interface?: string;
};

export type NetworksRequest = { networks: RequestedNetwork[]; error?: string };

/**
 * Reads `k8s.v1.cni.cncf.io/networks` in either of the forms Multus accepts:
 * a JSON list of `{name, namespace?, interface?, ...}` or the short form
 * `ns/name@ifname, name, ...`. A network without a namespace is looked up in
 * the pod's namespace, as Multus does.
 */
export function parseNetworksRequest(
  annotationValue: string | undefined,
  podNamespace: string,
): NetworksRequest {
  const value = annotationValue?.trim() ?? "";
  if (value === "") return { networks: [] };
  // Multus itself takes any of these characters to mean the JSON form.
  return /[[{"]/.test(value)
    ? parseJsonForm(value, podNamespace)
    : parseShortForm(value, podNamespace);
}

/**
 * Whether the network-status entry named `entryName` is an attachment to the
 * NetworkAttachmentDefinition a NetService names in `netAttachDef`.
 *
 * - `ns/name` matches only an entry named exactly `ns/name`.
 * - a bare `name` matches an entry `<ns>/name` where `<ns>` is a namespace the
 *   pod asked for a network called `name` in, or the pod's own namespace, and
 *   an entry named exactly `name`, which is what Multus before v3.6 wrote.
 *
 * Only names are compared: the cluster-network entry (`default: true`) gets no
 * special treatment in either direction. A pod outside the NetService's
 * namespace never matches, because the NetService cannot select it and a bare
 * name means nothing outside that namespace.
 */
export function matchesNetAttachDef(
  entryName: string,
  netAttachDef: string,
  netServiceNamespace: string,
  requestedNetworks: readonly RequestedNetwork[],
  podNamespace: string,
): boolean {
  if (podNamespace !== netServiceNamespace) return false;
  if (entryName === netAttachDef) return true;
  if (netAttachDef.includes("/")) return false;

  const slash = entryName.indexOf("/");
  if (slash === -1) return false;
  const entryNamespace = entryName.slice(0, slash);
  if (entryName.slice(slash + 1) !== netAttachDef) return false;
  return (
    entryNamespace === podNamespace ||
    requestedNetworks.some(
      (network) => network.name === netAttachDef && network.namespace === entryNamespace,
    )
  );
}

// Multus ignores fields it does not use here (ips, mac, default-route,
// portMappings, cni-args, ...); so do we. Null counts as absent because Go
// writers without `omitempty` produce it.
const requestSchema = z.array(
  z.object({
    name: z.string().min(1),
    namespace: z.string().nullish(),
    interface: z.string().nullish(),
    ips: z.array(z.string()).nullish(),
    mac: z.string().nullish(),
  }),
);

function parseJsonForm(value: string, podNamespace: string): NetworksRequest {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return { networks: [], error: "networks request: not valid JSON" };
  }
  const parsed = requestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.map(String).join(".")}` : "";
    return { networks: [], error: `networks request${where}: ${issue?.message ?? "invalid"}` };
  }
  return {
    networks: parsed.data.map((entry) => ({
      namespace: entry.namespace || podNamespace,
      name: entry.name,
      ...(entry.interface ? { interface: entry.interface } : {}),
    })),
  };
}

// `[namespace/]name[@interface]`, comma separated; blanks around items and an
// empty item (a trailing comma) are tolerated.
function parseShortForm(value: string, podNamespace: string): NetworksRequest {
  const networks: RequestedNetwork[] = [];
  for (const rawItem of value.split(",")) {
    const item = rawItem.trim();
    if (item === "") continue;
    const match = /^(?:([^/@\s]+)\/)?([^/@\s]+)(?:@([^/@\s]+))?$/.exec(item);
    if (!match) {
      return {
        networks: [],
        error: `networks request: "${truncate(item)}" is not [namespace/]name[@interface]`,
      };
    }
    const [, namespace, name = "", networkInterface] = match;
    networks.push({
      namespace: namespace ?? podNamespace,
      name,
      ...(networkInterface ? { interface: networkInterface } : {}),
    });
  }
  return { networks };
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
