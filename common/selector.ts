// Label selection with the meaning of a Service's selector.

/**
 * Whether labels satisfy a Service-style selector: every key present with an
 * equal value.
 *
 * An empty selector matches nothing. On a Service an empty selector means
 * "no selector" (endpoints are managed by someone else), never "every pod";
 * a NetService whose selector was emptied by mistake must not publish every
 * pod of its namespace on a secondary network.
 */
export function selectorMatches(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const entries = Object.entries(selector);
  if (entries.length === 0 || labels === undefined) return false;
  return entries.every(([key, value]) => Object.hasOwn(labels, key) && labels[key] === value);
}
