// Starts one real control plane per test file and stops it when the file's
// tests end, pass or fail.
import type { Test } from "tap";
import { ControlPlane, type ControlPlaneOptions } from "../../hack/cluster/control-plane.ts";
import { boundedTeardown } from "./teardown.ts";

export async function startControlPlane(t: Test, options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const plane = await ControlPlane.start({ report: (line) => t.comment(line), ...options });
  boundedTeardown(t, { name: "control plane", timeoutMs: 60_000, run: () => plane.stop() });
  return plane;
}
