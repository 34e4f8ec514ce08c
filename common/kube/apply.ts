// Writes: server-side apply under one field manager per program, and deletes
// that can never hit an object someone else recreated under the same name.
// Works for any kind: built-in kinds map to their resource directly, others
// (custom resources) through API discovery (resources.ts).
//
//   new Applier(http, {fieldManager, force = true})
//     apply<T>(obj, {fieldManager?, force?, dryRun?, signal?}): Promise<T>        the object as the server stored it
//     applyStatus<T>(obj, options?): Promise<T>                                   the status subresource
//     create<T>(obj, {signal?}): Promise<T>                                       POST: fails with 409 if the name is taken
//     mergePatch<T>(obj, patch, {signal?}): Promise<T>                            a JSON merge patch of obj (by name)
//     delete(obj, {uid?, resourceVersion?, propagationPolicy?, signal?}): Promise<"deleted" | "notFound" | "replaced">
//     deleteIfOwned(obj, ownerUid, options?): Promise<"deleted" | "notFound" | "notOwned">
//
//   const applier = new Applier(clients.http, { fieldManager: aggregatorFieldManager });
//   const stored = await applier.apply({ apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec });
//
// force defaults to true: each program is the only writer of the fields it
// applies, and ownership is checked before writing (never by SSA conflicts),
// so a conflict would only mean a human edited our fields, which the
// controller must undo.
import { type KubeHttp, isConflict, isNotFound } from "./http.ts";
import { controllerOf, type KubeObject } from "./object.ts";
import { ResourceResolver } from "./resources.ts";

const applyPatchContentType = "application/apply-patch+yaml";
const mergePatchContentType = "application/merge-patch+json";

export interface ApplierOptions {
  fieldManager: string;
  force?: boolean;
}

export interface ApplyOptions {
  fieldManager?: string;
  force?: boolean;
  /** Validate and compute the result without persisting it. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface DeleteOptions {
  /** Precondition; default metadata.uid of the object passed in. A delete without one is refused. */
  uid?: string;
  /** Precondition: fail with a 409 KubeApiError if the object changed since this version. */
  resourceVersion?: string;
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
  signal?: AbortSignal;
}

/**
 * deleted: the object is being deleted. notFound: it was already gone.
 * replaced: an object with that name exists but is another one (other uid); it was left alone.
 */
export type DeleteOutcome = "deleted" | "notFound" | "replaced";

export class Applier {
  private readonly http: KubeHttp;
  private readonly resolver: ResourceResolver;
  private readonly fieldManager: string;
  private readonly force: boolean;

  constructor(http: KubeHttp, options: ApplierOptions, resolver?: ResourceResolver) {
    if (!options.fieldManager) throw new Error("server-side apply needs a field manager");
    this.http = http;
    this.resolver = resolver ?? new ResourceResolver(http);
    this.fieldManager = options.fieldManager;
    this.force = options.force ?? true;
  }

  apply<T extends KubeObject = KubeObject>(obj: KubeObject, options: ApplyOptions = {}): Promise<T> {
    return this.patch<T>(obj, undefined, options);
  }

  applyStatus<T extends KubeObject = KubeObject>(obj: KubeObject, options: ApplyOptions = {}): Promise<T> {
    return this.patch<T>(obj, "status", options);
  }

  /**
   * Creates obj, which fails with a 409 KubeApiError if its name is taken:
   * unlike an apply, a create can never land on someone else's object.
   */
  async create<T extends KubeObject = KubeObject>(obj: KubeObject, options: { signal?: AbortSignal } = {}): Promise<T> {
    const path = await this.resolver.collectionPathOf(obj);
    return this.http.request<T>({
      method: "POST",
      path,
      query: { fieldManager: this.fieldManager },
      body: obj,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** A JSON merge patch of the object named by obj (its apiVersion, kind, namespace and name). */
  async mergePatch<T extends KubeObject = KubeObject>(
    obj: KubeObject,
    patch: object,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    const path = await this.resolver.pathOf(obj);
    return this.http.request<T>({
      method: "PATCH",
      path,
      query: { fieldManager: this.fieldManager },
      contentType: mergePatchContentType,
      body: patch,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  async delete(obj: KubeObject, options: DeleteOptions = {}): Promise<DeleteOutcome> {
    const uid = options.uid ?? obj.metadata?.uid;
    if (!uid) {
      throw new Error(`refusing to delete ${obj.kind} ${obj.metadata?.name} without a uid precondition`);
    }
    const path = await this.resolver.pathOf(obj);
    try {
      await this.http.request({
        method: "DELETE",
        path,
        body: {
          apiVersion: "v1",
          kind: "DeleteOptions",
          preconditions: { uid, resourceVersion: options.resourceVersion },
          propagationPolicy: options.propagationPolicy,
        },
        signal: options.signal,
      });
      return "deleted";
    } catch (err) {
      if (isNotFound(err)) return "notFound";
      // Without a resourceVersion precondition, the uid is the only one that can fail.
      if (isConflict(err) && !options.resourceVersion) return "replaced";
      throw err;
    }
  }

  /**
   * Deletes obj (as last seen, e.g. from an informer cache) only if its
   * controller owner has ownerUid, with uid and resourceVersion
   * preconditions so that the ownership check still holds when the delete
   * lands. A 409 KubeApiError means the object changed meanwhile: requeue and
   * decide again from fresh state.
   */
  async deleteIfOwned(
    obj: KubeObject,
    ownerUid: string,
    options: Omit<DeleteOptions, "uid" | "resourceVersion"> = {},
  ): Promise<"deleted" | "notFound" | "notOwned"> {
    if (controllerOf(obj)?.uid !== ownerUid) return "notOwned";
    const resourceVersion = obj.metadata?.resourceVersion;
    const outcome = await this.delete(obj, { ...options, resourceVersion });
    return outcome === "replaced" ? "notOwned" : outcome;
  }

  private async patch<T>(obj: KubeObject, subresource: string | undefined, options: ApplyOptions): Promise<T> {
    const path = await this.resolver.pathOf(obj, subresource);
    const force = options.force ?? this.force;
    return this.http.request<T>({
      method: "PATCH",
      path,
      query: {
        fieldManager: options.fieldManager ?? this.fieldManager,
        force: force ? true : undefined,
        dryRun: options.dryRun ? "All" : undefined,
      },
      // JSON is YAML, and the API server parses apply patches as YAML.
      body: obj,
      contentType: applyPatchContentType,
      signal: options.signal,
    });
  }
}
