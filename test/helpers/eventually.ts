// Polls until an assertion stops throwing: integration tests wait for
// controllers this way, with generous limits, and never assert timings.
export async function eventually<T>(check: () => Promise<T> | T, { timeoutMs = 30_000, intervalMs = 100 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) {
        (error as Error).message = `still failing after ${timeoutMs / 1000} s: ${(error as Error).message}`;
        throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Throws unless the condition holds: lets eventually() poll on plain conditions with a useful message. */
export function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
