// Where to connect and with which credentials, read from kubeconfig files or
// a pod's service account without loading @kubernetes/client-node: its
// KubeConfig imports every generated model and API (about 80 MB resident per
// process), while the programs need only a server, TLS material and a header.
//
//   loadKubeConfig({kubeconfig?, env?}): ClusterConfig
//     the first of: the explicit path, $KUBECONFIG (a list, like kubectl),
//     the in-cluster service account, ~/.kube/config; else an error that says what to do
//   clusterConfigFromFiles(files, source): ClusterConfig    kubectl's merge of a KUBECONFIG list
//   clusterConfigInCluster(env, root?, now?): ClusterConfig the service account's token and CA
//   config.getCurrentCluster(): {name, server, proxyUrl?} | null
//   await config.applyToHTTPSOptions(options)   TLS material, Authorization, Impersonate-User
//
// Tokens, token files (re-read every minute, as client-go does), client
// certificates and basic auth are handled here. A user with an exec plugin or
// an auth-provider (oidc, gcp, azure) is handed to client-node's KubeConfig,
// imported only then, so those keep working exactly as before at the old cost.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { isIPv6 } from "node:net";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import type { RequestOptions as HttpsRequestOptions } from "node:https";
import { z } from "zod";
import type { ClusterAccess } from "./http.ts";

export const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
const tokenRereadMs = 60_000;

export interface LoadKubeConfigOptions {
  /** An explicit kubeconfig file (a --kubeconfig flag); wins over everything else. */
  kubeconfig?: string;
  /** Default process.env. */
  env?: Record<string, string | undefined>;
}

export function loadKubeConfig(options: LoadKubeConfigOptions = {}): ClusterConfig {
  const env = options.env ?? process.env;
  const fromEnv = (env.KUBECONFIG ?? "").split(delimiter).filter((p) => p !== "");
  const home = env.HOME ?? homedir();
  const defaultFile = home ? join(home, ".kube", "config") : undefined;

  let config: ClusterConfig;
  if (options.kubeconfig) {
    config = clusterConfigFromFiles([options.kubeconfig], "--kubeconfig");
  } else if (fromEnv.length > 0) {
    config = clusterConfigFromFiles(fromEnv, "KUBECONFIG");
  } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(join(serviceAccountDir, "token"))) {
    config = clusterConfigInCluster(env);
  } else if (defaultFile && existsSync(defaultFile)) {
    config = clusterConfigFromFiles([defaultFile], "~/.kube/config");
  } else {
    throw new Error(
      "no Kubernetes configuration found: pass --kubeconfig PATH, set KUBECONFIG, " +
        "run in a pod with a service account token, or create ~/.kube/config",
    );
  }
  if (!config.getCurrentCluster()) {
    throw new Error(
      `kubeconfig context "${config.currentContext}" names no cluster; ` +
        "set current-context to a context with a cluster (kubectl config use-context NAME)",
    );
  }
  return config;
}

/**
 * The files merged as kubectl merges a KUBECONFIG list: the first file to
 * name a cluster, user or context (or to set current-context) wins; missing
 * entries of a list are skipped. Relative paths are relative to their file.
 */
export function clusterConfigFromFiles(files: string[], source: string): ClusterConfig {
  const merged: KubeConfigDocument = { clusters: [], users: [], contexts: [] };
  for (const file of files) {
    if (!existsSync(file)) {
      if (files.length === 1) throw new Error(`${source}: kubeconfig file ${file} does not exist`);
      continue;
    }
    const document = parseKubeConfigFile(file);
    merged["current-context"] ||= document["current-context"];
    addNew(merged.clusters, document.clusters);
    addNew(merged.users, document.users);
    addNew(merged.contexts, document.contexts);
  }
  if (merged.clusters.length === 0) {
    throw new Error(`${source}: none of ${files.join(", ")} holds a cluster`);
  }
  return new ClusterConfig(merged);
}

/** The pod's service account, as client-go's rest.InClusterConfig reads it. */
export function clusterConfigInCluster(env: Record<string, string | undefined>, root = serviceAccountDir, now: () => number = Date.now): ClusterConfig {
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  const port = env.KUBERNETES_SERVICE_PORT ?? "";
  return new ClusterConfig({
    "current-context": "in-cluster",
    clusters: [{ name: "in-cluster", cluster: { server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, "certificate-authority": join(root, "ca.crt") } }],
    users: [{ name: "in-cluster", user: { tokenFile: join(root, "token") } }],
    contexts: [{ name: "in-cluster", context: { cluster: "in-cluster", user: "in-cluster" } }],
  }, now);
}

/** kubectl writes `users: null` for an empty list. */
const listOf = <T extends z.ZodType>(entry: T) => z.array(entry).nullish().transform((list) => list ?? []);

const clusterSchema = z.object({
  server: z.string().min(1),
  "certificate-authority": z.string().optional(),
  "certificate-authority-data": z.string().optional(),
  "insecure-skip-tls-verify": z.boolean().optional(),
  "tls-server-name": z.string().optional(),
  "proxy-url": z.string().optional(),
});

const userSchema = z.object({
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  "token-file": z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  "client-certificate": z.string().optional(),
  "client-certificate-data": z.string().optional(),
  "client-key": z.string().optional(),
  "client-key-data": z.string().optional(),
  as: z.string().optional(),
  exec: z.record(z.string(), z.unknown()).optional(),
  "auth-provider": z.record(z.string(), z.unknown()).optional(),
}).nullish().transform((user) => user ?? {});

const contextSchema = z.object({ cluster: z.string(), user: z.string().optional(), namespace: z.string().optional() });

const kubeConfigSchema = z.object({
  "current-context": z.string().optional(),
  clusters: listOf(z.object({ name: z.string().min(1), cluster: clusterSchema })),
  users: listOf(z.object({ name: z.string().min(1), user: userSchema })),
  contexts: listOf(z.object({ name: z.string().min(1), context: contextSchema })),
});

type KubeConfigDocument = z.infer<typeof kubeConfigSchema>;
type ClusterEntry = KubeConfigDocument["clusters"][number];
type UserEntry = KubeConfigDocument["users"][number];
type User = UserEntry["user"];

/** The settings of one context, and the credentials it names, as KubeHttp asks for them. */
export class ClusterConfig implements ClusterAccess {
  readonly currentContext: string;
  readonly #document: KubeConfigDocument;
  readonly #cluster: ClusterEntry | undefined;
  readonly #user: User;
  readonly #now: () => number;
  #tls: Pick<HttpsRequestOptions, "ca" | "cert" | "key"> | undefined;
  #fileToken: { token: string; readAt: number } | undefined;
  #plugin: Promise<ClusterAccess> | undefined;

  constructor(document: KubeConfigDocument, now: () => number = Date.now) {
    this.#document = document;
    this.#now = now;
    this.currentContext = document["current-context"] ?? "";
    const context = document.contexts.find((c) => c.name === this.currentContext)?.context;
    this.#cluster = document.clusters.find((c) => c.name === context?.cluster);
    this.#user = document.users.find((u) => u.name === context?.user)?.user ?? {};
  }

  getCurrentCluster(): { name: string; server: string; proxyUrl?: string } | null {
    if (!this.#cluster) return null;
    const { name, cluster } = this.#cluster;
    return { name, server: cluster.server, ...(cluster["proxy-url"] ? { proxyUrl: cluster["proxy-url"] } : {}) };
  }

  /** TLS material (read once), and the credentials as headers (a token file is re-read every minute). */
  async applyToHTTPSOptions(options: HttpsRequestOptions): Promise<void> {
    if (this.#user.exec || this.#user["auth-provider"]) {
      await (this.#plugin ??= this.#pluginConfig()).then((config) => config.applyToHTTPSOptions(options));
      return;
    }
    const cluster = this.#cluster?.cluster;
    if (cluster?.["insecure-skip-tls-verify"]) options.rejectUnauthorized = false;
    if (cluster?.["tls-server-name"]) options.servername = cluster["tls-server-name"];
    Object.assign(options, (this.#tls ??= this.#readTls()));
    const headers: Record<string, string> = {};
    const token = this.#user.token ?? this.#tokenFromFile();
    if (token) headers.authorization = `Bearer ${token}`;
    if (this.#user.as) headers["impersonate-user"] = this.#user.as;
    if (this.#user.username !== undefined) options.auth = `${this.#user.username}:${this.#user.password ?? ""}`;
    options.headers = { ...options.headers, ...headers };
  }

  #readTls(): Pick<HttpsRequestOptions, "ca" | "cert" | "key"> {
    const cluster = this.#cluster?.cluster;
    const tls: Pick<HttpsRequestOptions, "ca" | "cert" | "key"> = {};
    const ca = fileOrData(cluster?.["certificate-authority"], cluster?.["certificate-authority-data"]);
    const cert = fileOrData(this.#user["client-certificate"], this.#user["client-certificate-data"]);
    const key = fileOrData(this.#user["client-key"], this.#user["client-key-data"]);
    if (ca) tls.ca = ca;
    if (cert) tls.cert = cert;
    if (key) tls.key = key;
    return tls;
  }

  #tokenFromFile(): string | undefined {
    const file = this.#user.tokenFile ?? this.#user["token-file"];
    if (!file) return undefined;
    if (!this.#fileToken || this.#now() - this.#fileToken.readAt > tokenRereadMs) {
      this.#fileToken = { token: readFileSync(file, "utf8").trim(), readAt: this.#now() };
    }
    return this.#fileToken.token;
  }

  /** client-node's KubeConfig for the same document: it runs exec plugins and auth-providers. */
  async #pluginConfig(): Promise<ClusterAccess> {
    const { KubeConfig } = await import("@kubernetes/client-node");
    const config = new KubeConfig();
    config.loadFromString(JSON.stringify({ apiVersion: "v1", kind: "Config", ...this.#document }));
    return config;
  }
}

function parseKubeConfigFile(file: string): KubeConfigDocument {
  const text = readFileSync(file, "utf8");
  let raw: unknown;
  try {
    raw = parseJsonOrYaml(text);
  } catch (err) {
    throw new Error(`kubeconfig file ${file} is neither JSON nor YAML: ${(err as Error).message}`);
  }
  const parsed = kubeConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`kubeconfig file ${file}: ${issue?.path.join(".")}: ${issue?.message}; fix the file (kubectl config view shows it)`);
  }
  return withAbsolutePaths(parsed.data, dirname(file));
}

/**
 * JSON (what kubectl and client-node write with exportConfig) is parsed
 * without the YAML library, which is loaded only for a YAML file: it costs a
 * program about 10 MB resident, and in a pod there is no kubeconfig file.
 */
function parseJsonOrYaml(text: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{")) return JSON.parse(trimmed);
  const yaml = createRequire(import.meta.url)("yaml") as typeof import("yaml");
  return yaml.parse(text);
}

function withAbsolutePaths(document: KubeConfigDocument, base: string): KubeConfigDocument {
  const absolute = (file: string | undefined) => (file === undefined || isAbsolute(file) ? file : join(base, file));
  const defined = <T extends object>(value: T) => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
  return {
    ...document,
    clusters: document.clusters.map(({ name, cluster }) => ({
      name,
      cluster: defined({ ...cluster, "certificate-authority": absolute(cluster["certificate-authority"]) }),
    })),
    users: document.users.map(({ name, user }) => ({
      name,
      user: defined({
        ...user,
        tokenFile: absolute(user.tokenFile),
        "token-file": absolute(user["token-file"]),
        "client-certificate": absolute(user["client-certificate"]),
        "client-key": absolute(user["client-key"]),
      }),
    })),
  };
}

function addNew<T extends { name: string }>(into: T[], from: T[]): void {
  for (const entry of from) {
    if (!into.some((e) => e.name === entry.name)) into.push(entry);
  }
}

function fileOrData(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, "base64");
  return undefined;
}
