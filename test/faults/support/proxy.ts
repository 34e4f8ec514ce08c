// A TLS-terminating reverse proxy between one program and the API server, on
// loopback, that a test can break in the ways networks and load balancers
// break: watches that go silent without closing, answers of 5xx for a while,
// watches that end early. It serves the API server's own certificate (valid
// for 127.0.0.1), speaks HTTP/2 and HTTP/1.1 to the program as the API server
// does, and forwards the program's bearer token untouched, so the program
// cannot tell it from the API server.
//
//   const proxy = await ApiProxy.start({ upstream: plane.server, ca, cert, key });
//   proxy.url                          // the program's kubeconfig server
//   proxy.freezeOpenWatches()          // open watches deliver nothing more, and stay open
//   proxy.failWith(503)                // every request is answered 503; open streams are cut
//   proxy.endOpenWatches()             // open watches end cleanly, as at the server's timeout
//   proxy.heal()                       // forward again (frozen watches stay frozen until the program drops them)
//   proxy.requests(since)              // what reached the proxy since a time
import { createSecureServer, constants as http2, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";

export type ProxiedRequest = { at: number; method: string; path: string; watch: boolean; status: number };

type Stream = {
  watch: boolean;
  frozen: boolean;
  /** Ends the downstream response cleanly. */
  end(): void;
  /** Cuts the downstream stream (RST_STREAM or a closed connection). */
  cut(): void;
};

type Mode = { kind: "pass" } | { kind: "fail"; status: number };

export class ApiProxy {
  readonly url: string;
  readonly #server: ReturnType<typeof createSecureServer>;
  readonly #upstream: URL;
  readonly #agent: Agent;
  readonly #streams = new Set<Stream>();
  readonly #log: ProxiedRequest[] = [];
  #mode: Mode = { kind: "pass" };

  private constructor(server: ReturnType<typeof createSecureServer>, upstream: URL, agent: Agent) {
    this.#server = server;
    this.#upstream = upstream;
    this.#agent = agent;
    this.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(options: { upstream: string; ca: Buffer; cert: Buffer; key: Buffer }): Promise<ApiProxy> {
    const agent = new Agent({ ca: options.ca, keepAlive: true });
    let proxy: ApiProxy | undefined;
    const server = createSecureServer({ cert: options.cert, key: options.key, allowHTTP1: true }, (req, res) => proxy?.handle(req, res));
    // A program dropping a connection mid-stream is ordinary here.
    server.on("sessionError", () => {});
    server.on("tlsClientError", () => {});
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    proxy = new ApiProxy(server, new URL(options.upstream), agent);
    return proxy;
  }

  /** Open watches stop delivering anything, and stay open: a half-open connection, a stuck middlebox. */
  freezeOpenWatches(): number {
    let frozen = 0;
    for (const stream of this.#streams) {
      if (stream.watch && !stream.frozen) {
        stream.frozen = true;
        frozen++;
      }
    }
    return frozen;
  }

  /** Open watches end as if the server's watch timeout had come: cleanly, so a client resumes from its last resourceVersion. */
  endOpenWatches(): number {
    const watches = [...this.#streams].filter((stream) => stream.watch);
    for (const stream of watches) stream.end();
    return watches.length;
  }

  /** From now on every request is answered with `status` (a Kubernetes Status), and every open stream is cut. */
  failWith(status: number): void {
    this.#mode = { kind: "fail", status };
    for (const stream of [...this.#streams]) stream.cut();
  }

  heal(): void {
    this.#mode = { kind: "pass" };
  }

  /** Requests that reached the proxy at or after `since` (ms since the epoch). */
  requests(since = 0, until = Number.POSITIVE_INFINITY): ProxiedRequest[] {
    return this.#log.filter((entry) => entry.at >= since && entry.at < until);
  }

  get openWatches(): number {
    return [...this.#streams].filter((stream) => stream.watch).length;
  }

  async close(): Promise<void> {
    for (const stream of [...this.#streams]) stream.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }

  private handle(req: Http2ServerRequest | IncomingMessage, response: Http2ServerResponse | ServerResponse): void {
    // The two response classes share these methods with incompatible overloads.
    const res = response as unknown as Downstream;
    const path = req.url ?? "/";
    const watch = /[?&]watch=(true|1)(&|$)/.test(path);
    const entry: ProxiedRequest = { at: Date.now(), method: req.method ?? "GET", path, watch, status: 0 };
    this.#log.push(entry);
    if (this.#mode.kind === "fail") {
      entry.status = this.#mode.status;
      const body = JSON.stringify({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "the fault-test proxy answers every request with an error",
        reason: this.#mode.status === 503 ? "ServiceUnavailable" : "InternalError",
        code: this.#mode.status,
      });
      res.writeHead(this.#mode.status, { "content-type": "application/json" });
      res.end(body);
      req.resume();
      return;
    }

    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || name.startsWith(":") || hopByHop.has(name)) continue;
      headers[name] = value;
    }
    headers.host = this.#upstream.host;
    const upstream = httpsRequest({
      host: this.#upstream.hostname,
      port: this.#upstream.port,
      method: req.method,
      path,
      headers,
      agent: this.#agent,
    });
    let finished = false;
    const finish = (how: "complete" | "end" | "cut") => {
      if (finished) return;
      finished = true;
      this.#streams.delete(stream);
      // A response that completed leaves its connection to the pool; anything else drops it.
      if (how !== "complete") upstream.destroy();
      if (how === "cut") cutResponse(response);
      else res.end();
    };
    const stream: Stream = { watch, frozen: false, end: () => finish("end"), cut: () => finish("cut") };
    this.#streams.add(stream);
    res.on("close", () => {
      // The program went away (or aborted the request): nothing more to forward.
      if (finished) return;
      finished = true;
      this.#streams.delete(stream);
      upstream.destroy();
    });
    upstream.on("error", () => {
      // A frozen watch stays silent even when the far end is gone: that is what a half-open connection looks like.
      if (!stream.frozen) finish("cut");
    });
    upstream.on("response", (answer) => {
      entry.status = answer.statusCode ?? 0;
      const responseHeaders: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !hopByHop.has(name)) responseHeaders[name] = value;
      }
      if (finished) return;
      res.writeHead(answer.statusCode ?? 502, responseHeaders);
      answer.on("data", (chunk: Buffer) => {
        if (!stream.frozen && !finished) res.write(chunk);
      });
      answer.on("end", () => {
        if (!stream.frozen) finish("complete");
      });
      answer.on("aborted", () => {
        if (!stream.frozen) finish("cut");
      });
    });
    req.pipe(upstream);
  }
}

type Downstream = {
  writeHead(status: number, headers: Record<string, string | string[]>): unknown;
  write(chunk: Buffer): unknown;
  end(body?: string): unknown;
  on(event: "close", listener: () => void): unknown;
};

const hopByHop = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host", "http2-settings", "trailer"]);

function cutResponse(res: Http2ServerResponse | ServerResponse): void {
  if ("stream" in res) {
    if (!res.stream.destroyed) res.stream.close(http2.NGHTTP2_INTERNAL_ERROR);
  } else {
    res.destroy();
  }
}
