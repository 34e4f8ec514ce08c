// The Debian packages the monitoring scripts run: a command found on PATH is
// used as it is; a missing one is installed with apt-get when the script runs
// as root, and otherwise named in the error with the package to install.
//
//   ensureDebianCommand({ command: "promtool", package: "prometheus" })
import { execFileSync, spawnSync } from "node:child_process";

export type DebianCommand = {
  command: string;
  package: string;
  /** Arguments that make the command print its version and exit 0. */
  versionArgs?: string[];
};

export function ensureDebianCommand(wanted: DebianCommand): void {
  if (spawnSync(wanted.command, wanted.versionArgs ?? ["--version"], { stdio: "ignore" }).status === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${wanted.command} is missing: install Debian's ${wanted.package} package (apt-get install -y ${wanted.package}) or put ${wanted.command} on PATH`);
  }
  // On a host booted with systemd the prometheus package also starts a Prometheus server.
  execFileSync("apt-get", ["update"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", wanted.package], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}
