/**
 * `transform_for_oci` (oci-and-boot.md §6.3), table-driven over hand-written dumpfiles: root
 * metadata from `/usr` (or the scratch default), `/run` canonicalisation, the xattr allowlist.
 */
import assert from "node:assert/strict";
import { dumpfileText, parseDumpfile } from "../../lib/dumpfile/mod.ts";
import { type Leaf, lookup, transformForOci, type XattrMode } from "../../lib/tree/mod.ts";

const enc = new TextEncoder();

interface Case {
  name: string;
  mode?: XattrMode;
  input: string;
  want: string;
}

const cases: Case[] = [
  {
    name: "the root takes /usr's mode, owner, mtime (sec + nsec) and xattrs, before xattr filtering",
    input: "/ 0 40700 3 9 9 0 5.0 - - - security.selinux=root_t\n" +
      "/usr 0 40555 2 1 2 0 1700000000.25 - - - security.capability=cap user.u=1 security.selinux=usr_t\n",
    want: "/ 0 40555 3 1 2 0 1700000000.25 - - - security.capability=cap\n" +
      "/usr 0 40555 2 1 2 0 1700000000.25 - - - security.capability=cap\n",
  },
  {
    name: "keep-user-xattrs keeps user.* as well",
    mode: "keep-user-xattrs",
    input: "/ 0 40000 3 0 0 0 0.0 - - -\n" +
      "/usr 0 40755 2 0 0 0 7.0 - - - security.capability=c trusted.t=1 user.u=1 userx=2\n",
    want: "/ 0 40755 3 0 0 0 7.0 - - - security.capability=c user.u=1\n" +
      "/usr 0 40755 2 0 0 0 7.0 - - - security.capability=c user.u=1\n",
  },
  {
    name: "/run is emptied and takes /usr's mtime; its mode and owner stay",
    input: "/ 0 40000 4 0 0 0 0.0 - - -\n" +
      "/run 0 41777 3 5 6 0 99.99 - - -\n" +
      "/run/cache 0 40755 2 0 0 0 0.0 - - -\n" +
      "/run/cache/x 1 100644 1 0 0 0 0.0 - x -\n" +
      "/run/f 0 100644 1 0 0 0 0.0 - - -\n" +
      "/usr 0 40755 2 0 0 0 10.5 - - -\n",
    want: "/ 0 40755 4 0 0 0 10.5 - - -\n" +
      "/run 0 41777 2 5 6 0 10.5 - - -\n" +
      "/usr 0 40755 2 0 0 0 10.5 - - -\n",
  },
  {
    name: "a /run that is not a directory is left alone",
    input: "/ 0 40000 3 0 0 0 0.0 - - -\n/run 3 120777 1 0 0 0 4.0 x/y - -\n/usr 0 40755 2 0 0 0 10.0 - - -\n",
    want: "/ 0 40755 3 0 0 0 10.0 - - -\n/run 3 120777 1 0 0 0 4.0 x/y - -\n/usr 0 40755 2 0 0 0 10.0 - - -\n",
  },
  {
    name: "an image without /usr gets the scratch root: root:root 0555, mtime 0, no xattrs (upstream fails)",
    input: "/ 0 40700 3 5 5 0 77.0 - - - user.x=1\n" +
      "/etc 0 40755 2 0 0 0 1.0 - - -\n/run 0 40755 3 0 0 0 3.0 - - -\n/run/x 0 40755 2 0 0 0 3.0 - - -\n",
    want: "/ 0 40555 4 0 0 0 0.0 - - -\n/etc 0 40755 2 0 0 0 1.0 - - -\n/run 0 40755 2 0 0 0 0.0 - - -\n",
  },
  {
    name: "a /usr that is a symlink counts as no /usr",
    input: "/ 0 40700 2 5 5 0 77.0 - - -\n/usr 3 120777 1 0 0 0 4.0 opt - -\n",
    want: "/ 0 40555 2 0 0 0 0.0 - - -\n/usr 3 120777 1 0 0 0 4.0 opt - -\n",
  },
  {
    name: "xattrs are filtered on every directory and leaf, hardlinks included",
    input: "/ 0 40000 3 0 0 0 0.0 - - -\n" +
      "/usr 0 40755 3 0 0 0 1.0 - - -\n" +
      "/usr/bin 0 40755 2 0 0 0 1.0 - - - security.selinux=bin_t user.a=b\n" +
      "/usr/bin/ping 65 100755 2 0 0 0 1.0 ab/" + "c".repeat(62) + " - ab" + "c".repeat(62) +
      " security.capability=\\x01\\x02 security.ima=x\n" +
      "/usr/bin/ping2 0 @120000 - - - - 0.0 /usr/bin/ping - -\n" +
      "/usr/l 1 120777 1 0 0 0 1.0 x - - trusted.overlay.opaque=y\n",
    want: "/ 0 40755 3 0 0 0 1.0 - - -\n" +
      "/usr 0 40755 3 0 0 0 1.0 - - -\n" +
      "/usr/bin 0 40755 2 0 0 0 1.0 - - -\n" +
      "/usr/bin/ping 65 100755 2 0 0 0 1.0 ab/" + "c".repeat(62) + " - ab" + "c".repeat(62) +
      " security.capability=\\x01\\x02\n" +
      "/usr/bin/ping2 0 @120000 - - - - 0.0 /usr/bin/ping - -\n" +
      "/usr/l 1 120777 1 0 0 0 1.0 x - -\n",
  },
];

for (const c of cases) {
  Deno.test(`transform: ${c.name}`, () => {
    const root = parseDumpfile(enc.encode(c.input));
    transformForOci(root, c.mode ? { xattrs: c.mode } : {});
    assert.equal(dumpfileText(root), c.want);
  });
}

Deno.test("transform: the root's xattrs are a copy, not /usr's map", () => {
  const root = parseDumpfile(enc.encode(
    "/ 0 40000 3 0 0 0 0.0 - - -\n/usr 0 40755 2 0 0 0 1.0 - - - security.capability=c\n",
  ));
  transformForOci(root);
  root.stat.xattrs.clear();
  assert.equal(lookup(root, "/usr")!.stat.xattrs.size, 1);
});

Deno.test("transform: hardlinked leaves stay one object", () => {
  const root = parseDumpfile(enc.encode(
    "/ 0 40000 3 0 0 0 0.0 - - -\n/usr 0 40755 2 0 0 0 1.0 - - -\n" +
      "/usr/a 1 100644 2 0 0 0 1.0 - x - user.k=v\n/usr/b 0 @120000 - - - - 0.0 /usr/a - -\n",
  ));
  transformForOci(root);
  const a = lookup(root, "/usr/a") as Leaf;
  assert.equal(lookup(root, "/usr/b"), a);
  assert.equal(a.stat.xattrs.size, 0);
});
