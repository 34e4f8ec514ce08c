// Checks deploy/monitoring/alerts.yaml with promtool: `promtool check rules`
// on the PrometheusRule's groups, then `promtool test rules` on
// deploy/monitoring/alerts.test.yaml. promtool reads plain rule files, so the
// groups are written to a temporary directory beside a copy of the tests.
// Installs promtool (Debian's prometheus package) when missing and running
// as root.
//
//   node hack/monitoring/check.ts      (npm run test:alerts)
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { ensureDebianCommand } from "./packages.ts";

const monitoring = new URL("../../deploy/monitoring/", import.meta.url).pathname;

ensureDebianCommand({ command: "promtool", package: "prometheus" });
const directory = mkdtempSync(join(tmpdir(), "netservice-alerts-"));
try {
  const rule = parse(readFileSync(join(monitoring, "alerts.yaml"), "utf8")) as { kind?: string; spec?: { groups?: unknown } };
  if (rule.kind !== "PrometheusRule" || !Array.isArray(rule.spec?.groups)) throw new Error("deploy/monitoring/alerts.yaml is not a PrometheusRule with spec.groups");
  writeFileSync(join(directory, "alerts.rules.yaml"), stringify({ groups: rule.spec.groups }));
  copyFileSync(join(monitoring, "alerts.test.yaml"), join(directory, "alerts.test.yaml"));
  promtool(["check", "rules", join(directory, "alerts.rules.yaml")]);
  promtool(["test", "rules", join(directory, "alerts.test.yaml")]);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
} finally {
  rmSync(directory, { recursive: true, force: true });
}

// Throws on a failure, so that the temporary directory goes too (process.exit would skip the finally).
function promtool(args: string[]): void {
  const result = spawnSync("promtool", args, { stdio: "inherit" });
  if (result.error) throw new Error(`cannot run promtool: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`promtool ${args.slice(0, 2).join(" ")} failed (exit ${result.status ?? result.signal})`);
}
