// Preloaded with `node -r ./hack/mem/at-exit.cjs PROGRAM --help`: prints the
// process's peak resident set (VmHWM) when it exits, so that a program that
// loads its modules, prints its usage and exits shows what loading it costs,
// whatever it is written in (sources or a bundle).
process.on("exit", () => {
  const status = require("node:fs").readFileSync("/proc/self/status", "utf8");
  const peakKb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)[1]);
  process.stderr.write(`${JSON.stringify({ program: process.argv[1], peakRssMb: Math.round(peakKb / 1024) })}\n`);
});
