// The programs as bundles (hack/bundle.ts): they run, and neither they nor
// the sources they come from load @kubernetes/client-node or yaml at start;
// those cost a program about 90 MB and are imported only when a kubeconfig
// needs them (docs/performance.md, Memory).
import { execFile } from "node:child_process";
import { isBuiltin } from "node:module";
import path from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { bundlePrograms, loadedOnDemand } from "../../hack/bundle.ts";
import { tempDir } from "../helpers/temp-dir.ts";

const outdir = tempDir(t, "netservice-bundle-");
const metafile = await bundlePrograms(outdir);

for (const program of ["node-agent", "aggregator"]) {
  const file = path.join(outdir, `${program}.mjs`);
  const output = Object.entries(metafile.outputs).find(([name]) => path.resolve(name) === file)?.[1];

  t.test(`${program}: client-node and yaml are imported only on demand`, async (t) => {
    t.ok(output, `${program}.mjs was written`);
    const packages = (output?.imports ?? []).filter((i) => !isBuiltin(i.path));
    t.same(packages.map((i) => `${i.kind} ${i.path}`), ["dynamic-import @kubernetes/client-node"], "only client-node's import() is left outside (yaml is require()d by name, out of esbuild's sight)");
    const sources = Object.keys(output?.inputs ?? {});
    t.notOk(sources.some((s) => loadedOnDemand.some((name) => s.includes(`node_modules/${name}/`))), "neither is bundled");
  });

  t.test(`${program}: the bundle runs`, async (t) => {
    const { stdout } = await promisify(execFile)(process.execPath, [file, "--help"], { env: { ...process.env, NODE_OPTIONS: "" } });
    t.match(stdout, /^Usage: node /);
  });
}
