// The never-adopt rule: the aggregator writes or deletes an object only if
// this incarnation of the NetService (same uid) is its controller. A name
// held by anyone else (a user's Service, another controller's object) is
// never adopted, overwritten or deleted: it becomes a problem in the status.
// The one exception is an object controlled by an earlier NetService of the
// same name, which the garbage collector is about to remove anyway: it is
// deleted at once, so the new NetService can publish without waiting.
//
// Every write path asks here: the plan (plan.ts) before it creates, updates
// or deletes, the writer (writer.ts) when a create finds a name taken and
// before it sweeps Kubernetes' slices; deletes also carry the owner's uid as
// a precondition (Applier.deleteIfOwned), so the check still holds when they land.
import { apiVersion, netServiceKind, type NetService } from "../common/api.ts";
import { controllerOf, type KubeObject } from "../common/kube/object.ts";

/** Whether this incarnation of the NetService (same uid) is the object's controller. */
export function controls(netService: NetService, object: KubeObject): boolean {
  return (object.metadata?.ownerReferences ?? []).some(
    (reference) =>
      reference.controller === true &&
      reference.uid === netService.metadata.uid &&
      reference.kind === netServiceKind &&
      reference.apiVersion === apiVersion,
  );
}

/** What to do about one desired object, given what holds its name now. */
export type ObjectDecision =
  | { decision: "create" }
  | { decision: "update" }
  | { decision: "unchanged" }
  /** Left over from a deleted NetService of the same name (another uid): delete it now, create ours next pass. */
  | { decision: "replacePredecessor"; predecessorUid: string }
  /** Someone else's: never touched. */
  | { decision: "taken"; holder?: string };

export function decideObject(
  netService: NetService,
  existing: KubeObject | undefined,
  needsWrite: () => boolean,
): ObjectDecision {
  if (!existing) return { decision: "create" };
  if (controls(netService, existing)) {
    return needsWrite() ? { decision: "update" } : { decision: "unchanged" };
  }
  const controller = controllerOf(existing);
  if (
    controller?.kind === netServiceKind &&
    controller.apiVersion === apiVersion &&
    controller.name === netService.metadata.name &&
    controller.uid !== netService.metadata.uid
  ) {
    return { decision: "replacePredecessor", predecessorUid: controller.uid };
  }
  return controller ? { decision: "taken", holder: `${controller.kind} ${controller.name}` } : { decision: "taken" };
}
