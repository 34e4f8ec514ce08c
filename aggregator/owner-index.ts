// Which cached objects belong to which NetService, kept current from
// informer events, so that a reconcile finds its own objects (obsolete
// slices, an old template Service) without scanning every cached object.

export class OwnerIndex {
  private readonly ownerOf = new Map<string, string>();
  private readonly members = new Map<string, Set<string>>();

  /** Records the owner of an object (undefined: none); replaces what was recorded before. */
  set(objectKey: string, ownerKey: string | undefined): void {
    this.delete(objectKey);
    if (ownerKey === undefined) return;
    this.ownerOf.set(objectKey, ownerKey);
    const members = this.members.get(ownerKey);
    if (members) members.add(objectKey);
    else this.members.set(ownerKey, new Set([objectKey]));
  }

  delete(objectKey: string): void {
    const ownerKey = this.ownerOf.get(objectKey);
    if (ownerKey === undefined) return;
    this.ownerOf.delete(objectKey);
    const members = this.members.get(ownerKey);
    members?.delete(objectKey);
    if (members?.size === 0) this.members.delete(ownerKey);
  }

  objectsOf(ownerKey: string): string[] {
    return [...(this.members.get(ownerKey) ?? [])].sort();
  }
}
