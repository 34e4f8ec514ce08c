// Generates the PKI of one local control plane with the openssl command:
// a CA, the API server's serving certificate, client certificates for the
// admin and the controllers, and the service-account signing key.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export type Pki = {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** Client certificates by name: admin, kube-controller-manager, kube-scheduler. */
  clients: Record<ClientName, { cert: string; key: string }>;
};

export type ClientName = "admin" | "kube-controller-manager" | "kube-scheduler";

const subjects: Record<ClientName, string> = {
  admin: "/O=system:masters/CN=netservice-admin",
  "kube-controller-manager": "/CN=system:kube-controller-manager",
  "kube-scheduler": "/CN=system:kube-scheduler",
};

/** Writes every file of the PKI into dir and returns their paths. */
export async function generatePki(dir: string): Promise<Pki> {
  const file = (name: string) => path.join(dir, name);
  await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650",
    "-subj", "/CN=netservice-local-ca", "-keyout", file("ca.key"), "-out", file("ca.crt"),
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  await issue(dir, "apiserver", "/CN=kube-apiserver", [
    "subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:::1,IP:10.96.0.1",
    "extendedKeyUsage=serverAuth",
  ]);
  for (const [name, subject] of Object.entries(subjects)) await issue(dir, name, subject, ["extendedKeyUsage=clientAuth"]);
  await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", file("sa.key")]);
  await openssl(["pkey", "-in", file("sa.key"), "-pubout", "-out", file("sa.pub")]);
  const client = (name: string) => ({ cert: file(`${name}.crt`), key: file(`${name}.key`) });
  return {
    caCert: file("ca.crt"),
    caKey: file("ca.key"),
    serverCert: file("apiserver.crt"),
    serverKey: file("apiserver.key"),
    serviceAccountKey: file("sa.key"),
    serviceAccountPub: file("sa.pub"),
    clients: { admin: client("admin"), "kube-controller-manager": client("kube-controller-manager"), "kube-scheduler": client("kube-scheduler") },
  };
}

async function issue(dir: string, name: string, subject: string, extensions: string[]) {
  const file = (suffix: string) => path.join(dir, `${name}.${suffix}`);
  const extFile = file("ext");
  await writeFile(extFile, ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", ...extensions].join("\n") + "\n");
  await openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
    "-keyout", file("key"), "-out", file("csr")]);
  await openssl(["x509", "-req", "-in", file("csr"), "-CA", path.join(dir, "ca.crt"), "-CAkey", path.join(dir, "ca.key"),
    "-CAcreateserial", "-days", "3650", "-extfile", extFile, "-out", file("crt")]);
}

async function openssl(args: string[]) {
  try {
    await run("openssl", args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`openssl ${args[0]} failed (is the openssl command installed?): ${stderr || (error as Error).message}`);
  }
}
