// The container image holds only what the Dockerfile copies (common/,
// node-agent/, aggregator/, package.json) and the production dependencies.
// Both programs must run from that alone: every module they load, following
// imports from their entrypoints, must be in the image.
import { readFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import path from "node:path";
import t from "tap";

const root = path.resolve(import.meta.dirname, "..", "..");
const entrypoints = ["node-agent/main.ts", "aggregator/main.ts"];

const packageJson = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};
const copied = await copiedPaths();

t.test("the Dockerfile copies the sources and the production dependencies, nothing more", async (t) => {
  t.same([...copied].sort(), ["aggregator", "common", "node-agent", "package.json"]);
  const dockerfile = await readFile(path.join(root, "Dockerfile"), "utf8");
  t.match(dockerfile, /npm ci --omit=dev/, "development dependencies (the npm package node included) stay out");
  t.match(dockerfile, /^USER 65532:65532$/m, "runs as non-root 65532");
});

for (const entrypoint of entrypoints) {
  t.test(`everything ${entrypoint} loads is in the image`, async (t) => {
    const { files, packages } = await moduleGraph(entrypoint);
    t.ok(files.size > 1, `${files.size} source files`);
    for (const file of files) {
      t.ok(inImage(file), `${file} is copied into the image`);
    }
    for (const name of packages) {
      t.ok(Object.hasOwn(packageJson.dependencies, name), `${name} is a production dependency`);
    }
  });
}

/** The repository paths that `COPY <path> ...` (not --from another stage) puts into the final image. */
async function copiedPaths(): Promise<Set<string>> {
  const dockerfile = await readFile(path.join(root, "Dockerfile"), "utf8");
  const stages = dockerfile.split(/^FROM\s/m);
  const final = stages[stages.length - 1] ?? "";
  const paths = new Set<string>();
  for (const [, sources] of final.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)) {
    for (const source of sources!.trim().split(/\s+/)) paths.add(source.replace(/\/$/, ""));
  }
  return paths;
}

function inImage(file: string): boolean {
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
