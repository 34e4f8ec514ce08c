// npm run bundle: each program as one JavaScript file, dist/node-agent.mjs and
// dist/aggregator.mjs, for `node dist/node-agent.mjs` instead of
// `node node-agent/main.ts`. The same code, measured in docs/performance.md
// (Memory): without the TypeScript loader and with only what the programs use
// of their dependencies, a program's resident set is about 35 MB smaller.
//
//   node hack/bundle.ts [--outdir DIR]          default dist/
//   const metafile = await bundlePrograms(dir)  esbuild's account of what went in and what each bundle imports
//
// Left outside the bundles, loaded from node_modules only when a kubeconfig
// needs them (common/kube/kubeconfig.ts): @kubernetes/client-node (exec
// plugins, auth-providers) and yaml (a kubeconfig file in YAML).
import path from "node:path";
import { parseArgs } from "node:util";
import { build, type Metafile } from "esbuild";

const repoRoot = path.resolve(import.meta.dirname, "..");
export const loadedOnDemand = ["@kubernetes/client-node", "yaml"];

export async function bundlePrograms(outdir: string): Promise<Metafile> {
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints: { "node-agent": "node-agent/main.ts", aggregator: "aggregator/main.ts" },
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    external: loadedOnDemand,
    // Dependencies in CommonJS (undici, pino, prom-client) require() Node's own modules; an ES module has no require of its own.
    banner: { js: 'import { createRequire as bundleRequire } from "node:module"; const require = bundleRequire(import.meta.url);' },
    metafile: true,
    logLevel: "warning",
  });
  return result.metafile;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { outdir: { type: "string", default: path.join(repoRoot, "dist") } } });
  const metafile = await bundlePrograms(path.resolve(values.outdir));
  process.stdout.write(`${Object.keys(metafile.outputs).join(", ")}\n`);
}
