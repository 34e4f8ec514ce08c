// What every object the aggregator writes for a NetService has in common:
// the NetService owns it (so deleting the NetService garbage-collects it) and
// says so in a label, and only the fields we set decide whether to write.
import type { V1ObjectMeta, V1OwnerReference } from "@kubernetes/client-node";
import { apiVersion, labels, netServiceKind, type NetService, type ServicePort } from "./api.ts";

/**
 * Metadata of an object owned by the NetService. The controller reference is
 * what the aggregator checks before touching an existing object, so it never
 * adopts or overwrites one it did not create.
 */
export function ownedMetadata(
  netService: NetService,
  name: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): V1ObjectMeta {
  const annotations = extra.annotations ?? {};
  return {
    name,
    namespace: netService.metadata.namespace,
    labels: { [labels.netService]: netService.metadata.name, ...extra.labels },
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    ownerReferences: [ownerReference(netService)],
  };
}

export function ownerReference(netService: NetService): V1OwnerReference {
  return {
    apiVersion,
    kind: netServiceKind,
    name: netService.metadata.name,
    uid: netService.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * Whether the metadata we own differs: our labels, our controller reference,
 * and the presence and value of the annotations in `ownedAnnotations`
 * (a key we no longer set must disappear). Annotations not listed, such as
 * the trigger time, never cause a write on their own.
 */
export function metadataNeedsWrite(
  desired: V1ObjectMeta | undefined,
  existing: V1ObjectMeta | undefined,
  ownedAnnotations: readonly string[],
): boolean {
  const labelsDiffer = Object.entries(desired?.labels ?? {}).some(
    ([key, value]) => existing?.labels?.[key] !== value,
  );
  const annotationsDiffer = ownedAnnotations.some(
    (key) => desired?.annotations?.[key] !== existing?.annotations?.[key],
  );
  const ownerMissing = (desired?.ownerReferences ?? []).some(
    (wanted) =>
      !(existing?.ownerReferences ?? []).some(
        (present) =>
          present.uid === wanted.uid &&
          present.controller === wanted.controller &&
          present.blockOwnerDeletion === wanted.blockOwnerDeletion,
      ),
  );
  return labelsDiffer || annotationsDiffer || ownerMissing;
}

/** The port fields we set, with the API server's defaults applied, for comparisons. */
export function comparablePorts(
  ports: readonly { name?: string; port?: number; protocol?: string; appProtocol?: string }[] | undefined,
): object[] {
  return (ports ?? []).map((port) => ({
    name: port.name || undefined,
    port: port.port,
    protocol: port.protocol ?? "TCP",
    appProtocol: port.appProtocol || undefined,
  }));
}

/** NetService ports in the shape Services, Endpoints and EndpointSlices share. */
export function portsOf(netService: NetService): ServicePort[] {
  return netService.spec.ports.map((port) => ({
    ...(port.name ? { name: port.name } : {}),
    port: port.port,
    protocol: port.protocol,
    ...(port.appProtocol ? { appProtocol: port.appProtocol } : {}),
  }));
}
