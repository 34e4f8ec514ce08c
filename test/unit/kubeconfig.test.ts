// Our kubeconfig loader against client-node's KubeConfig, the library it
// stands in for in the programs: for each kubeconfig below both must send the
// same server, TLS material and credentials.
import { mkdirSync, writeFileSync } from "node:fs";
import type { RequestOptions as HttpsRequestOptions } from "node:https";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import t from "tap";
import { stringify as toYaml } from "yaml";
import type { ClusterAccess } from "../../common/kube/http.ts";
import { clusterConfigFromFiles, clusterConfigInCluster, loadKubeConfig } from "../../common/kube/kubeconfig.ts";
import { tempDir } from "../helpers/temp-dir.ts";

const base64 = (text: string) => Buffer.from(text).toString("base64");

/** What a request gets from a configuration: the figures KubeHttp reads, header names in lower case. */
async function applied(access: ClusterAccess) {
  const options: HttpsRequestOptions = {};
  await access.applyToHTTPSOptions(options);
  const headers = Object.fromEntries(Object.entries(options.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
  const text = (value: unknown) => (value === undefined ? undefined : String(value));
  return {
    server: access.getCurrentCluster()?.server,
    proxyUrl: access.getCurrentCluster()?.proxyUrl,
    ca: text(options.ca),
    cert: text(options.cert),
    key: text(options.key),
    rejectUnauthorized: options.rejectUnauthorized,
    servername: options.servername,
    auth: options.auth,
    headers,
  };
}

const cases: Array<{ name: string; cluster?: Record<string, unknown>; user: Record<string, unknown>; files?: Record<string, string>; want: Partial<Awaited<ReturnType<typeof applied>>> }> = [
  {
    name: "a bearer token and the CA as data",
    cluster: { "certificate-authority-data": base64("CA") },
    user: { token: "abc" },
    want: { ca: "CA", headers: { authorization: "Bearer abc" } },
  },
  {
    name: "a client certificate and key as data (the local control plane's admin)",
    cluster: { "certificate-authority-data": base64("CA") },
    user: { "client-certificate-data": base64("CERT"), "client-key-data": base64("KEY") },
    want: { ca: "CA", cert: "CERT", key: "KEY", headers: {} },
  },
  {
    name: "files relative to the kubeconfig's folder",
    cluster: { "certificate-authority": "pki/ca.crt" },
    user: { "client-certificate": "pki/client.crt", "client-key": "pki/client.key" },
    files: { "pki/ca.crt": "CA FILE", "pki/client.crt": "CERT FILE", "pki/client.key": "KEY FILE" },
    want: { ca: "CA FILE", cert: "CERT FILE", key: "KEY FILE" },
  },
  {
    name: "basic auth, impersonation, no TLS verification, a TLS server name and a proxy",
    cluster: { "insecure-skip-tls-verify": true, "tls-server-name": "kubernetes", "proxy-url": "http://proxy:3128" },
    user: { username: "admin", password: "secret", as: "jane" },
    want: { rejectUnauthorized: false, servername: "kubernetes", proxyUrl: "http://proxy:3128", auth: "admin:secret", headers: { "impersonate-user": "jane" } },
  },
  {
    name: "an exec plugin (handed to client-node)",
    user: {
      exec: {
        apiVersion: "client.authentication.k8s.io/v1",
        command: process.execPath,
        args: ["-e", 'process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "from-exec" } }))'],
        interactiveMode: "Never",
      },
    },
    want: { headers: { authorization: "Bearer from-exec" } },
  },
];

for (const format of ["yaml", "json"] as const) {
  for (const c of cases) {
    t.test(`${format}: ${c.name}: the same request options as client-node`, async (t) => {
      const dir = tempDir(t, "kubeconfig-");
      for (const [name, content] of Object.entries(c.files ?? {})) {
        mkdirSync(join(dir, name, ".."), { recursive: true });
        writeFileSync(join(dir, name), content);
      }
      const document = {
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://api.example:6443", ...c.cluster } }],
        users: [{ name: "u", user: c.user }],
        contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
        "current-context": "ctx",
      };
      const file = join(dir, "config");
      writeFileSync(file, format === "yaml" ? toYaml(document) : JSON.stringify(document));
      const ours = await applied(loadKubeConfig({ kubeconfig: file, env: {} }));
      const library = new KubeConfig();
      library.loadFromFile(file);
      t.same(ours, await applied(library));
      t.match(ours, { server: "https://api.example:6443", ...c.want });
    });
  }
}

t.test("in a pod: the service account's CA and token, the token re-read after a minute", async (t) => {
  const root = tempDir(t, "serviceaccount-");
  writeFileSync(join(root, "ca.crt"), "CLUSTER CA");
  writeFileSync(join(root, "token"), "first\n");
  let now = 0;
  const config = clusterConfigInCluster({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, root, () => now);
  t.match(await applied(config), { server: "https://[fd00::1]:443", ca: "CLUSTER CA", headers: { authorization: "Bearer first" } });
  writeFileSync(join(root, "token"), "rotated\n");
  now = 59_000;
  t.match(await applied(config), { headers: { authorization: "Bearer first" } }, "read at most once a minute");
  now = 61_000;
  t.match(await applied(config), { headers: { authorization: "Bearer rotated" } }, "the kubelet's rotated token is picked up");
});

t.test("a KUBECONFIG list merges as kubectl does: the first to name a thing wins", async (t) => {
  const dir = tempDir(t, "kubeconfig-");
  const write = (name: string, document: object) => {
    writeFileSync(join(dir, name), toYaml(document));
    return join(dir, name);
  };
  const first = write("first", {
    clusters: [{ name: "shared", cluster: { server: "https://first:6443" } }],
    users: null,
    contexts: [{ name: "ctx", context: { cluster: "shared", user: "u" } }],
  });
  const second = write("second", {
    "current-context": "ctx",
    clusters: [{ name: "shared", cluster: { server: "https://second:6443" } }],
    users: [{ name: "u", user: { token: "from-second" } }],
    contexts: [{ name: "ctx", context: { cluster: "other", user: "nobody" } }],
  });
  const config = clusterConfigFromFiles([first, join(dir, "missing"), second], "KUBECONFIG");
  t.match(await applied(config), { server: "https://first:6443", headers: { authorization: "Bearer from-second" } });
});

t.test("a kubeconfig that cannot be used is refused at start-up with what to fix", async (t) => {
  const dir = tempDir(t, "kubeconfig-");
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  t.throws(() => loadKubeConfig({ kubeconfig: write("no-server", toYaml({ clusters: [{ name: "c", cluster: {} }] })), env: {} }), /no-server: clusters\.0\.cluster\.server/);
  t.throws(() => loadKubeConfig({ kubeconfig: write("bad", "clusters: [unclosed"), env: {} }), /neither JSON nor YAML/);
  t.throws(
    () => loadKubeConfig({ kubeconfig: write("no-context", toYaml({ clusters: [{ name: "c", cluster: { server: "https://a" } }], "current-context": "gone" })), env: {} }),
    /context "gone" names no cluster/,
  );
});
