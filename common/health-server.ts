// The HTTP endpoints both programs serve for the kubelet and Prometheus:
// /healthz (the process serves requests and, if the program can tell, is not
// stuck), /readyz (the program says it is ready), /metrics (a prom-client
// registry).
//
//   const server = await serveHealth({ port: 8080, ready: () => agent.ready, registry, logger });
//   ... await server.close();
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./log.ts";

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export type HealthServerOptions = {
  /** 0 picks a free port (tests). */
  port: number;
  ready: () => boolean;
  /** A reason when the program is stuck: /healthz then answers 503 with it. */
  stalled?: () => string | undefined;
  /** Body of a 503 from /readyz. */
  notReadyMessage?: string;
  registry: Registry;
  logger: Logger;
};

export async function serveHealth(options: HealthServerOptions): Promise<HealthServer> {
  const { ready, registry, logger } = options;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "method not allowed\n");
    if (path === "/healthz" || path === "/livez") {
      const stalled = options.stalled?.();
      return stalled === undefined ? reply(200, "ok\n") : reply(503, `stalled: ${stalled}\n`);
    }
    if (path === "/readyz") return ready() ? reply(200, "ok\n") : reply(503, `${options.notReadyMessage ?? "not ready"}\n`);
    if (path === "/metrics") {
      registry
        .metrics()
        .then((text) => reply(200, text, registry.contentType))
        .catch((err: unknown) => {
          logger.warn({ err }, "could not collect metrics");
          reply(500, "could not collect metrics\n");
        });
      return;
    }
    reply(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
