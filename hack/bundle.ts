// npm run bundle: each program as one JavaScript file, dist/node-agent.mjs and
// dist/aggregator.mjs, for `node dist/node-agent.mjs` instead of
// `node node-agent/main.ts`. The same code, measured in docs/performance.md
// (Memory): without the TypeScript loader and with only what the programs use
// of their dependencies, a program's resident set is about 35 MB smaller.
//
// Left outside the bundles, loaded from node_modules only when a kubeconfig
// needs them (common/kube/kubeconfig.ts): @kubernetes/client-node (exec
// plugins, auth-providers) and yaml (a kubeconfig file in YAML).
import path from "node:path";
import { build } from "esbuild";

const repoRoot = path.resolve(import.meta.dirname, "..");
export const bundleDir = path.join(repoRoot, "dist");

await build({
  absWorkingDir: repoRoot,
  entryPoints: { "node-agent": "node-agent/main.ts", aggregator: "aggregator/main.ts" },
  outdir: bundleDir,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  external: ["@kubernetes/client-node", "yaml"],
  // Dependencies in CommonJS (undici, pino, prom-client) require() Node's own modules; an ES module has no require of its own.
  banner: { js: 'import { createRequire as bundleRequire } from "node:module"; const require = bundleRequire(import.meta.url);' },
  logLevel: "warning",
});
process.stdout.write(`${path.relative(process.cwd(), bundleDir)}/node-agent.mjs, ${path.relative(process.cwd(), bundleDir)}/aggregator.mjs\n`);
