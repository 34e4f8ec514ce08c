// The container image holds the two programs bundled (dist/, built in the
// Dockerfile's bundles stage by hack/bundle.ts from the sources it copies),
// package.json and the production dependencies. Both programs must build
// from what that stage copies: every module they load, following imports
// from their entrypoints, must be copied there, and every package they load
// must be a production dependency (bundled, or in the image's node_modules
// for what the bundles load on demand). deploy/ must run the bundles.
import { readFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import path from "node:path";
import t from "tap";
import { parseAllDocuments } from "yaml";

const root = path.resolve(import.meta.dirname, "..", "..");
const entrypoints = { "node-agent/main.ts": "dist/node-agent.mjs", "aggregator/main.ts": "dist/aggregator.mjs" };

const packageJson = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};
const dockerfile = await readFile(path.join(root, "Dockerfile"), "utf8");

t.test("the final image holds the bundles, package.json and the production dependencies, nothing more", async (t) => {
  t.same([...copiedPaths(finalStage())].sort(), ["package.json"], "from the repository: package.json only");
  t.same([...finalStage().matchAll(/^COPY\s+--from=(\S+)\s+(\S+)\s+\S+$/gm)].map(([, stage, source]) => `${stage}:${source}`).sort(),
    ["bundles:/app/dist", "dependencies:/app/node_modules"], "from the build stages: the bundles and the production node_modules");
  t.match(stage("dependencies"), /npm ci --omit=dev/, "development dependencies (the npm package node included) stay out");
  t.match(dockerfile, /^USER 65532:65532$/m, "runs as non-root 65532");
});

t.test("deploy/ runs the bundles", async (t) => {
  const args: string[][] = [];
  for (const file of ["agent.yaml", "aggregator.yaml"]) {
    for (const document of parseAllDocuments(await readFile(path.join(root, "deploy", file), "utf8"))) {
      const object = document.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } } } | null;
      if (object?.kind === "DaemonSet" || object?.kind === "Deployment") args.push(object.spec!.template!.spec!.containers![0]!.args!);
    }
  }
  t.same(args.map((a) => a[0]).sort(), Object.values(entrypoints).sort());
});

for (const [entrypoint, bundle] of Object.entries(entrypoints)) {
  t.test(`everything ${entrypoint} loads is copied into the bundles stage, which builds ${bundle}`, async (t) => {
    t.match(stage("bundles"), /^dependencies\s+AS\s+bundles/i, "the bundles stage starts from the dependencies stage");
    const copied = new Set([...copiedPaths(stage("dependencies")), ...copiedPaths(stage("bundles"))]);
    t.match(stage("bundles"), /RUN node hack\/bundle\.ts --outdir dist/);
    const { files, packages } = await moduleGraph(entrypoint);
    t.ok(files.size > 1, `${files.size} source files`);
    for (const file of files) {
      t.ok(inStage(copied, file), `${file} is copied into the bundles stage`);
    }
    for (const name of packages) {
      t.ok(Object.hasOwn(packageJson.dependencies, name), `${name} is a production dependency`);
    }
  });
}

/** The Dockerfile's stage named NAME (`FROM ... AS NAME`). */
function stage(name: string): string {
  const found = dockerfile.split(/^FROM\s/m).find((text) => new RegExp(`^\\S+\\s+AS\\s+${name}\\s*$`, "im").test(text.split("\n")[0]!));
  if (!found) throw new Error(`no stage ${name} in the Dockerfile`);
  return found;
}

function finalStage(): string {
  const stages = dockerfile.split(/^FROM\s/m);
  return stages[stages.length - 1] ?? "";
}

/** The repository paths that a stage's `COPY <path> ...` (not --from another stage) copies. */
function copiedPaths(text: string): Set<string> {
  const paths = new Set<string>();
  for (const [, sources] of text.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)) {
    for (const source of sources!.trim().split(/\s+/)) paths.add(source.replace(/\/$/, ""));
  }
  return paths;
}

function inStage(copied: Set<string>, file: string): boolean {
  if (file.endsWith(".test.ts")) return false; // .dockerignore
  const top = file.split("/")[0]!;
  return copied.has(file) || copied.has(top);
}

/** Files (relative to the repo) and npm packages reached from an entrypoint by runtime imports. */
async function moduleGraph(entrypoint: string): Promise<{ files: Set<string>; packages: Set<string> }> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [entrypoint];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    if (!file.endsWith(".ts")) continue;
    const source = await readFile(path.join(root, file), "utf8");
    for (const specifier of runtimeImports(source)) {
      if (specifier.startsWith(".")) {
        pending.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)));
      } else if (!specifier.startsWith("node:") && !builtinModules.includes(specifier)) {
        const parts = specifier.split("/");
        packages.add(specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!);
      }
    }
  }
  return { files, packages };
}

/** Specifiers of imports that exist at run time (type-only imports are erased). */
function runtimeImports(source: string): string[] {
  const specifiers: string[] = [];
  const statements = /(?:^|[;\n])\s*(import|export)(\s+type\b)?([^;"'`]*?)\bfrom\s*["']([^"']+)["']/g;
  for (const [, , typeOnly, , specifier] of source.matchAll(statements)) {
    if (!typeOnly) specifiers.push(specifier!);
  }
  for (const [, specifier] of source.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) specifiers.push(specifier!);
  for (const [, specifier] of source.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) specifiers.push(specifier!);
  return specifiers;
}
