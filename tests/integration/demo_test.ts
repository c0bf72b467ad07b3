/** The README's first command (`npm run demo` → scripts/demo.ts) keeps working end to end. */
import assert from "node:assert/strict";
import { requireRoot } from "../helpers/fs.ts";

Deno.test("demo: the sample OS image is generated, installed into a scratch root, listed by status and mounted", async () => {
  requireRoot();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", new URL("../../scripts/demo.ts", import.meta.url).pathname],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  assert.match(
    out,
    /\$ bootcfs --progress plain install to-filesystem --source-imgref oci:\S+:1 --root-mount-spec= --json \S+\/root\/sysroot\n/,
  );
  const id = /"deployment": "([0-9a-f]{128})"/.exec(out)?.[1];
  assert.ok(id, out);
  assert.match(out, /\nlocalhost\/bootc-sha256:[0-9a-f]{64} +sha256:[0-9a-f]{12} +linux\/amd64 +2 +[0-9a-f]{16}\n/);
  assert.match(out, /no problems/);
  assert.match(out, new RegExp(`\noptions rw composefs=\\?${id}\n`));
  assert.match(out, /\nboot_type = bls\n/);
  // status lists the deployment (the scratch root is not the booted system).
  assert.match(out, /No deployment of \S+ is booted/);
  assert.match(out, new RegExp(`Other image: oci:\\S+:1\\n.*\\n +Verity: ${id}\\n`));
  assert.match(out, /PRETTY_NAME="bootcfs sample OS 1"/);
  assert.match(out, /Welcome to the bootcfs sample OS \(update 1\)\./);
  // The update layer's whiteout removed obsolete.conf from the merged tree.
  assert.match(out, /\nhostname {2}motd {2}os-release\n/);
  assert.match(out, new RegExp(`composefs=\\?${id} boots it`));
});
