// A seeded random source (mulberry32), so a run with the same parameters
// makes the same pods and choices: the benchmark's workload and the fault
// tests' churn replay from their seeds.
//
//   const random = seededRandom(1);   // random() in [0, 1)
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
