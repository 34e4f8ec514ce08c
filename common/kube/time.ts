// The two time formats the API server accepts, written one way everywhere.
//
//   microTime(ms)   metav1.MicroTime: RFC 3339 with exactly six fractional digits (Events, Leases)
//   metaTime(ms)    metav1.Time: RFC 3339 with second precision (conditions' lastTransitionTime)

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits, which the API server insists on. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}

/** metav1.Time: RFC 3339 with second precision. */
export function metaTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
