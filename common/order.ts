// The order of every sorted list the programs publish (reports, endpoints,
// slices, status): code-unit order, independent of the locale the process
// runs in, so the same input always gives the same bytes and no write
// happens for a mere reordering.

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
