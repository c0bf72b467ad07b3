import assert from "node:assert/strict";
import { createProgress } from "../../lib/cli/progress.ts";
import { bootcTag, splitImage, withTotal } from "../../lib/commands/pull.ts";

Deno.test("pull: IMAGE transports, bare names are registry references", () => {
  assert.deepEqual(splitImage("quay.io/fedora/fedora-bootc:42"), {
    imgref: "docker://quay.io/fedora/fedora-bootc:42",
    transport: "registry",
    name: "quay.io/fedora/fedora-bootc:42",
  });
  assert.deepEqual(splitImage("docker://127.0.0.1:5000/rig/base:1"), {
    imgref: "docker://127.0.0.1:5000/rig/base:1",
    transport: "registry",
    name: "127.0.0.1:5000/rig/base:1",
  });
  assert.deepEqual(splitImage("oci:/srv/layout:v1"), {
    imgref: "oci:/srv/layout:v1",
    transport: "oci",
    name: "/srv/layout:v1",
  });
  assert.equal(splitImage("containers-storage:localhost/x").transport, "containers-storage");
  assert.equal(splitImage("oci-archive:/a.tar").transport, "oci-archive");
  assert.equal(bootcTag("sha256:abc"), "localhost/bootc-sha256:abc");
});

Deno.test("pull: the total task sums the byte tasks' totals and progress; item tasks stay out", () => {
  const lines: Record<string, unknown>[] = [];
  let now = 0;
  const p = withTotal(createProgress("json", { write: (s) => lines.push(JSON.parse(s)), clock: () => (now += 1000) }));
  const a = p.task("layer a", { unit: "bytes", total: 100 });
  const b = p.task("layer b", { unit: "bytes" });
  p.task("layer c", { unit: "items" }).done();
  b.setTotal(50);
  a.advance(60);
  b.set(50);
  b.done();
  a.advance(40);
  a.done();
  p.finish();
  const total = lines.filter((l) => l.task === "total");
  assert.deepEqual(total.at(-1), { event: "progress.done", task: "total", unit: "bytes", done: 150, total: 150 });
  assert.ok(!lines.some((l) => l.task === "total" && (l.total as number) > 150));
});
