// KubeHttp against a real API server, over HTTP/2 as kube-apiserver speaks
// it: closing the clients after the watches were stopped, which is what
// every program and test does on its way out, must not crash the process.
// undici 8.13.1 emitted 'error' on an HTTP/2 stream with no listener left
// when the watch pool was destroyed, in about one close in ten here; the
// uncaught exception ended test/integration/least-privilege.test.ts with
// exit code 1 in CI (docs/testing.md, "Stop 21's CI failure").
import t from "tap";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeHttp } from "../../common/kube/http.ts";
import { startControlPlane } from "../helpers/control-plane.ts";

const plane = await startControlPlane(t);
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(plane.kubeconfig);
const watched = ["/api/v1/pods", "/api/v1/configmaps", "/apis/coordination.k8s.io/v1/leases", "/api/v1/nodes"];
const listPath = "/api/v1/namespaces/default/configmaps";

t.test("clients closed right after their watches were stopped close cleanly, every time", async (t) => {
  const uncaught: unknown[] = [];
  const collect = (error: unknown) => void uncaught.push(error);
  process.on("uncaughtException", collect);
  t.teardown(() => void process.off("uncaughtException", collect));
  const rounds = 100;
  let watchesEnded = 0;
  for (let round = 0; round < rounds; round++) {
    const http = new KubeHttp({ kubeConfig, userAgent: "netservice-test" });
    await http.request({ method: "GET", path: listPath });
    const stop = new AbortController();
    const watches = watched.map(async (path) => {
      try {
        for await (const _event of http.watch(path, { allowWatchBookmarks: true, timeoutSeconds: 300 }, stop.signal)) {
          // Events are not the point: the streams being open is.
        }
      } catch {
        // The abort below ends each watch with its reason.
      }
      watchesEnded++;
    });
    // Requests in flight beside the watches, as a program's writes are.
    const requests = [0, 1, 2].map(() => http.request({ method: "GET", path: listPath }).catch(() => undefined));
    // A moment for the streams to open, varied so the close meets them in different states.
    await new Promise((resolve) => setTimeout(resolve, (round % 10) * 3));
    stop.abort(new Error("stopping"));
    await Promise.all([...watches, ...requests]);
    await new Promise((resolve) => setTimeout(resolve, round % 5));
    await http.close();
  }
  // Errors emitted with no listener surface on a later turn of the event loop.
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(watchesEnded, rounds * watched.length, "every watch ended when it was stopped");
  t.same(uncaught.map(String), [], "no uncaught exception");
});
