// The public images of the samples swapped for local stand-ins, as the kind
// run on a machine without a registry needs (hack/kind/images.sh workloads).
import t from "tap";
import { parseImageMap, withLocalImages } from "../../hack/manifests.ts";
import type { KubeObject } from "../../common/kube/object.ts";

t.test("parseImageMap reads PUBLIC=LOCAL pairs and refuses anything else", async (t) => {
  t.same([...parseImageMap(" ubuntu:latest=netservice.local/debian:bookworm-minbase\n busybox:1.37=x/busybox:b ")], [
    ["ubuntu:latest", "netservice.local/debian:bookworm-minbase"],
    ["busybox:1.37", "x/busybox:b"],
  ]);
  t.equal(parseImageMap("").size, 0);
  for (const bad of ["ubuntu:latest", "=local", "public="]) t.throws(() => parseImageMap(bad), /is not PUBLIC=LOCAL/, bad);
});

t.test("withLocalImages swaps the mapped images of Pods and pod templates, and nothing else", async (t) => {
  const images = parseImageMap("ubuntu:latest=local/debian:1 busybox:1.37=local/busybox:1");
  const objects: KubeObject[] = [
    { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { containers: [{ name: "a", image: "busybox:1.37" }, { name: "b", image: "other:1" }] } },
    { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" }, spec: { replicas: 3, template: { metadata: { labels: { app: "d" } }, spec: { initContainers: [{ name: "i", image: "ubuntu:latest" }], containers: [{ name: "c", image: "ubuntu:latest", command: ["tail"] }] } } } },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { image: "ubuntu:latest" } },
  ];
  const swapped = withLocalImages(objects, images);
  t.same(swapped[0]!.spec, { containers: [{ name: "a", image: "local/busybox:1" }, { name: "b", image: "other:1" }] });
  t.same(swapped[1]!.spec, { replicas: 3, template: { metadata: { labels: { app: "d" } }, spec: { initContainers: [{ name: "i", image: "local/debian:1" }], containers: [{ name: "c", image: "local/debian:1", command: ["tail"] }] } } });
  t.same(swapped[2], objects[2], "no pod spec: unchanged");
  t.equal((objects[1]!.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]!.image, "ubuntu:latest", "the input is not modified");
  t.equal(withLocalImages(objects, new Map()), objects, "an empty map changes nothing");
});
