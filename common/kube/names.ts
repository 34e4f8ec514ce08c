// Kubernetes' rules for names (RFC 1123), written once: for flags, the
// NetService schema and the simulated Multus alike.

/** A DNS-1123 label's characters: lower-case alphanumerics and '-', alphanumeric at both ends (length apart). */
export const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A namespace, a Service name: a DNS-1123 label of at most 63 characters. */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && dnsLabelPattern.test(name);
}

/** Most object names (a Node, a Lease): dot-separated labels, at most 253 characters. */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && name.split(".").every((label) => dnsLabelPattern.test(label));
}
