// What one side (our EndpointSlices, our Endpoints, or Kubernetes' own
// EndpointSlices of the template Services) currently shows of each pod, and
// which pods' views an update of one object changed.
//
//   const views = new PodViews();
//   for (const change of views.update(objectKey, endpointsOfSlice(slice))) ...   // {uid, view}
//   views.update(objectKey, undefined)                                            // the object was deleted
//
// A pod's view merges every object of the side that lists it: present,
// ready if any entry says so, and the union of its addresses (so a
// dual-stack pod in an IPv4 and an IPv6 slice shows both).

export type PodView = { present: false } | { present: true; ready: boolean; addresses: string[] };

/** One pod's entry in one object. */
export type PodEntry = { ready: boolean; addresses: string[] };

export type SliceJson = {
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean }; targetRef?: { kind?: string; uid?: string } }[] | null;
};

export type EndpointsJson = {
  subsets?: { addresses?: AddressJson[]; notReadyAddresses?: AddressJson[] }[] | null;
};

type AddressJson = { ip?: string; targetRef?: { kind?: string; uid?: string } };

/** The pods of an EndpointSlice, by uid; ready as the API defines a missing condition (true). */
export function entriesOfSlice(slice: SliceJson): Map<string, PodEntry> {
  const entries = new Map<string, PodEntry>();
  for (const endpoint of slice.endpoints ?? []) {
    const uid = endpoint.targetRef?.kind === "Pod" ? endpoint.targetRef.uid : undefined;
    if (!uid) continue;
    add(entries, uid, endpoint.conditions?.ready ?? true, endpoint.addresses ?? []);
  }
  return entries;
}

export type ReportJson = {
  spec?: {
    pods?: { uid?: string; serving?: boolean; terminating?: boolean }[];
    netServices?: { endpoints?: { pod?: number; addresses?: string[] }[] }[];
  };
};

/** The pods a node report publishes (for any NetService), by uid: ready when serving and not terminating. */
export function entriesOfReport(report: ReportJson): Map<string, PodEntry> {
  const entries = new Map<string, PodEntry>();
  const pods = report.spec?.pods ?? [];
  for (const netService of report.spec?.netServices ?? []) {
    for (const endpoint of netService.endpoints ?? []) {
      const pod = pods[endpoint.pod ?? -1];
      if (pod?.uid) add(entries, pod.uid, pod.serving === true && pod.terminating !== true, endpoint.addresses ?? []);
    }
  }
  for (const entry of entries.values()) entry.addresses = [...new Set(entry.addresses)];
  return entries;
}

/** The pods of an Endpoints object, by uid: `addresses` are ready, `notReadyAddresses` not. */
export function entriesOfEndpoints(endpoints: EndpointsJson): Map<string, PodEntry> {
  const entries = new Map<string, PodEntry>();
  for (const subset of endpoints.subsets ?? []) {
    for (const [list, ready] of [[subset.addresses, true], [subset.notReadyAddresses, false]] as const) {
      for (const address of list ?? []) {
        const uid = address.targetRef?.kind === "Pod" ? address.targetRef.uid : undefined;
        if (uid && address.ip) add(entries, uid, ready, [address.ip]);
      }
    }
  }
  return entries;
}

function add(entries: Map<string, PodEntry>, uid: string, ready: boolean, addresses: string[]) {
  const entry = entries.get(uid);
  if (entry) {
    entry.ready ||= ready;
    entry.addresses.push(...addresses);
  } else {
    entries.set(uid, { ready, addresses: [...addresses] });
  }
}

export class PodViews {
  /** Object key -> its entries. */
  readonly #objects = new Map<string, Map<string, PodEntry>>();
  /** Pod uid -> keys of the objects that list it. */
  readonly #listedIn = new Map<string, Set<string>>();
  readonly #views = new Map<string, PodView>();

  view(uid: string): PodView {
    return this.#views.get(uid) ?? { present: false };
  }

  /** Replaces what object `key` lists (undefined: the object is gone); returns the pods whose view changed. */
  update(key: string, entries: Map<string, PodEntry> | undefined): { uid: string; view: PodView }[] {
    const before = this.#objects.get(key);
    const touched = new Set<string>([...(before?.keys() ?? []), ...(entries?.keys() ?? [])]);
    if (entries) this.#objects.set(key, entries);
    else this.#objects.delete(key);
    for (const uid of before?.keys() ?? []) {
      if (entries?.has(uid)) continue;
      const keys = this.#listedIn.get(uid);
      keys?.delete(key);
      if (keys?.size === 0) this.#listedIn.delete(uid);
    }
    for (const uid of entries?.keys() ?? []) {
      let keys = this.#listedIn.get(uid);
      if (!keys) this.#listedIn.set(uid, (keys = new Set()));
      keys.add(key);
    }
    const changed: { uid: string; view: PodView }[] = [];
    for (const uid of touched) {
      const view = this.#merge(uid);
      if (sameView(view, this.view(uid))) continue;
      if (view.present) this.#views.set(uid, view);
      else this.#views.delete(uid);
      changed.push({ uid, view });
    }
    return changed;
  }

  #merge(uid: string): PodView {
    const keys = this.#listedIn.get(uid);
    if (!keys || keys.size === 0) return { present: false };
    let ready = false;
    const addresses = new Set<string>();
    for (const key of keys) {
      const entry = this.#objects.get(key)?.get(uid);
      if (!entry) continue;
      ready ||= entry.ready;
      for (const address of entry.addresses) addresses.add(address);
    }
    return { present: true, ready, addresses: [...addresses].sort() };
  }
}

export function sameView(a: PodView, b: PodView): boolean {
  if (!a.present || !b.present) return a.present === b.present;
  return a.ready === b.ready && a.addresses.length === b.addresses.length && a.addresses.every((address, i) => address === b.addresses[i]);
}
