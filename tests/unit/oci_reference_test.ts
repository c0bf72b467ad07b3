import assert from "node:assert/strict";
import { formatImageReference, parseImageReference } from "../../lib/oci/mod.ts";

const H = "a".repeat(64);

// Expected forms follow containers/image (docker.io defaults, library/, latest) and, for oci:,
// composefs-rs's last-colon rule (oci-and-boot.md §3.4).
const ok: [string, string][] = [
  ["docker://busybox", "docker://docker.io/library/busybox:latest"],
  ["docker://busybox:1.36", "docker://docker.io/library/busybox:1.36"],
  ["docker://library/busybox", "docker://docker.io/library/busybox:latest"],
  ["docker://index.docker.io/foo/bar", "docker://docker.io/foo/bar:latest"],
  ["docker://quay.io/fedora/fedora-bootc:42", "docker://quay.io/fedora/fedora-bootc:42"],
  ["docker://localhost/x", "docker://localhost/x:latest"],
  ["docker://127.0.0.1:5000/rig/base:1", "docker://127.0.0.1:5000/rig/base:1"],
  ["docker://localhost:5000/a/b/c", "docker://localhost:5000/a/b/c:latest"],
  [`docker://quay.io/x@sha256:${H}`, `docker://quay.io/x@sha256:${H}`],
  ["docker://[::1]:5000/x", "docker://[::1]:5000/x:latest"],
  ["docker://a__b/c-d.e_f", "docker://docker.io/a__b/c-d.e_f:latest"],
  ["oci:/srv/layout", "oci:/srv/layout"],
  ["oci:/srv/layout:v1", "oci:/srv/layout:v1"],
  ["oci:/p/oci:tag:with:colons", "oci:/p/oci:tag:with:colons"],
  ["oci:/p/a:b/c", "oci:/p/a:b/c"],
  ["oci-archive:/tmp/a.tar", "oci-archive:/tmp/a.tar"],
  ["oci-archive:/tmp/a.tar:localhost/t:1", "oci-archive:/tmp/a.tar:localhost/t:1"],
  ["docker-archive:/tmp/d.tar", "docker-archive:/tmp/d.tar"],
  ["docker-archive:/tmp/d.tar:busybox", "docker-archive:/tmp/d.tar:docker.io/library/busybox:latest"],
  ["docker-archive:/tmp/d.tar:@1", "docker-archive:/tmp/d.tar:@1"],
  ["containers-storage:busybox", "containers-storage:docker.io/library/busybox:latest"],
  ["containers-storage:localhost/t:1", "containers-storage:localhost/t:1"],
  [`containers-storage:${H}`, `containers-storage:${H}`],
  [`containers-storage:sha256:${H}`, `containers-storage:${H}`],
  [`containers-storage:localhost/t@${H}`, `containers-storage:localhost/t:latest@${H}`],
  [
    "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage:o1=a,o2]quay.io/x:2",
    "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage:o1=a,o2]quay.io/x:2",
  ],
  ["containers-storage:[/srv/store]x", "containers-storage:[/srv/store]docker.io/library/x:latest"],
];

Deno.test("oci reference: parse and normalise like containers/image", () => {
  for (const [input, want] of ok) {
    const r = parseImageReference(input);
    assert.equal(formatImageReference(r), want, input);
    assert.deepEqual(parseImageReference(formatImageReference(r)), r, `${input} round trip`);
  }
});

Deno.test("oci reference: fields", () => {
  assert.deepEqual(parseImageReference("oci:/p/oci:tag:with:colons"), {
    transport: "oci",
    path: "/p/oci:tag:with",
    tag: "colons",
  });
  assert.deepEqual(parseImageReference("oci:/p/a:b/c"), { transport: "oci", path: "/p/a:b/c" });
  const d = parseImageReference(`docker://quay.io/x@sha256:${H}`);
  assert.ok(d.transport === "docker");
  assert.equal(d.ref.domain, "quay.io");
  assert.equal(d.ref.path, "x");
  assert.equal(d.ref.tag, undefined);
  assert.equal(d.ref.digest, `sha256:${H}`);
  const cs = parseImageReference("containers-storage:[overlay@/a+/b:x]n");
  assert.ok(cs.transport === "containers-storage");
  assert.deepEqual(cs.store, { driver: "overlay", root: "/a", runRoot: "/b", options: ["x"] });
});

const bad: [string, RegExp][] = [
  ["busybox", /missing transport/],
  ["ftp://x", /unsupported image transport "ftp"/],
  ["docker:busybox", /want docker:\/\/NAME/],
  ["docker://", /missing image name/],
  ["docker://Busybox/X", /must be lowercase/],
  ["docker://quay.io/Upper", /must be lowercase/],
  [`docker://${H}`, /image ID/],
  [`docker://x:1@sha256:${H}`, /both a tag and a digest/],
  ["docker://x@sha256:abc", /invalid digest|not a digest/],
  ["docker://x@md5:" + "a".repeat(32), /not a digest|unsupported/],
  ["docker://x:-bad", /invalid tag/],
  ["docker://x:" + "t".repeat(129), /invalid tag/],
  ["docker://a/-b", /invalid repository path/],
  ["docker://a//b", /invalid repository path/],
  ["docker://" + "a".repeat(260), /255/],
  ["docker://bad_host.com:x/y", /invalid registry/],
  ["oci:", /missing directory/],
  ["oci-archive:", /missing archive path/],
  ["docker-archive:/d.tar:@x", /bad index/],
  [`docker-archive:/d.tar:x@sha256:${H}`, /cannot have a digest/],
  ["containers-storage:", /missing image name/],
  ["containers-storage:[relative]x", /absolute path/],
  ["containers-storage:[/a", /unterminated/],
];

Deno.test("oci reference: invalid references name the problem", () => {
  for (const [input, re] of bad) assert.throws(() => parseImageReference(input), re, input);
});
