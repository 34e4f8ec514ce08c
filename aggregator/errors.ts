// How the reconciler tells failures apart: the ones a user must fix (they go
// into the status), the ones a retry fixes, and the end of leadership.
import { KubeApiError, statusCode } from "../common/kube/http.ts";

/** Thrown instead of writing once this replica has stopped leading. */
export class LeadershipLostError extends Error {
  constructor() {
    super("not leading: no more writes");
    this.name = "LeadershipLostError";
  }
}

/**
 * A create refused because the namespace is being deleted: the NetService
 * goes with it, so this is no failure for the user to fix (no ApplyFailed,
 * no Warning Event) and no reason to retry.
 */
export function isNamespaceTerminating(err: unknown): boolean {
  if (!(err instanceof KubeApiError) || err.code !== 403) return false;
  const causes = (err.status?.details as { causes?: { type?: string }[] } | undefined)?.causes ?? [];
  return causes.some((cause) => cause.type === "NamespaceTerminating") || /because it is being terminated/.test(err.message);
}

/**
 * Whether the API server refused a write for a reason a retry alone cannot
 * fix (invalid object, forbidden by RBAC or admission, quota): reported as
 * ApplyFailed with the server's message. Everything else is retried with
 * backoff without a word in the status: 404 and 409 mean the object changed
 * under us (the next pass decides again from the cache), as does the
 * immutable-uid refusal of an apply whose target was replaced; 429 and 5xx
 * are the server's own trouble, and no code at all is the network's.
 */
export function isRefusal(err: unknown): boolean {
  if (isNamespaceTerminating(err)) return false;
  const code = statusCode(err);
  if (code === undefined || code < 400 || code >= 500) return false;
  if (code === 404 || code === 409 || code === 429) return false;
  if (code === 422 && err instanceof KubeApiError && /metadata\.uid/.test(err.message)) return false;
  return true;
}
