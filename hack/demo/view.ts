// What the run command shows: per NetService, the pods behind it with their
// node, secondary addresses and readiness, read back from the Endpoints the
// aggregator published (so it shows what DNS clients get, not what we meant).
export type EndpointView = { pod: string; node: string; addresses: string[]; ready: boolean };
export type NetServiceView = { namespace: string; name: string; network: string; endpoints: EndpointView[] };

type EndpointAddress = { ip: string; nodeName?: string; targetRef?: { kind?: string; name?: string } };
export type EndpointsJson = { subsets?: { addresses?: EndpointAddress[]; notReadyAddresses?: EndpointAddress[] }[] };
export type NetServiceJson = { metadata: { namespace?: string; name?: string }; spec?: { netAttachDef?: string } };

/** Groups an Endpoints object's addresses by pod, ready ones first, in stable order. */
export function netServiceView(netService: NetServiceJson, endpoints: EndpointsJson | undefined): NetServiceView {
  const byPod = new Map<string, EndpointView>();
  for (const subset of endpoints?.subsets ?? []) {
    for (const [ready, list] of [[true, subset.addresses ?? []], [false, subset.notReadyAddresses ?? []]] as const) {
      for (const address of list) {
        const pod = address.targetRef?.name ?? "-";
        const view = byPod.get(pod) ?? { pod, node: address.nodeName ?? "-", addresses: [], ready };
        view.addresses.push(address.ip);
        byPod.set(pod, view);
      }
    }
  }
  const views = [...byPod.values()].map((view) => ({ ...view, addresses: view.addresses.sort(compareAddresses) }));
  return {
    namespace: netService.metadata.namespace ?? "",
    name: netService.metadata.name ?? "",
    network: netService.spec?.netAttachDef ?? "",
    endpoints: views.sort((a, b) => a.pod.localeCompare(b.pod)),
  };
}

/** A plain-text table per NetService, one row per address. */
export function renderTables(views: NetServiceView[]): string {
  if (views.length === 0) return "no NetServices\n";
  return views.map(renderTable).join("\n");
}

function renderTable(view: NetServiceView): string {
  const title = `NetService ${view.namespace}/${view.name} (network ${view.network})`;
  const rows = view.endpoints.flatMap((e) => e.addresses.map((address) => [e.pod, e.node, address, e.ready ? "yes" : "no"]));
  if (rows.length === 0) return `${title}\n  no endpoints\n`;
  const header = ["POD", "NODE", "ADDRESS", "READY"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => "  " + cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  return [title, line(header), ...rows.map(line)].join("\n") + "\n";
}

/** IPv4 before IPv6, then by text: the order people expect to read. */
function compareAddresses(a: string, b: string): number {
  const familyA = a.includes(":") ? 1 : 0;
  const familyB = b.includes(":") ? 1 : 0;
  return familyA - familyB || a.localeCompare(b, "en", { numeric: true });
}
