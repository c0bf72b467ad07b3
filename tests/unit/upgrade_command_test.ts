import assert from "node:assert/strict";
import { withTag } from "../../lib/commands/upgrade.ts";

Deno.test("upgrade --tag: the tag replaced, a digest dropped, a registry port left alone", () => {
  assert.equal(withTag("docker://quay.io/x/os:1", "2"), "docker://quay.io/x/os:2");
  assert.equal(withTag("docker://127.0.0.1:5000/os", "2"), "docker://127.0.0.1:5000/os:2");
  assert.equal(withTag(`docker://quay.io/x/os@sha256:${"ab".repeat(32)}`, "2"), "docker://quay.io/x/os:2");
  assert.equal(withTag("oci:/srv/layout:t", "u"), "oci:/srv/layout:u");
  assert.equal(withTag("oci:/srv/layout", "u"), "oci:/srv/layout:u");
});
