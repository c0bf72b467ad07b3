/** lib/mount/mountinfo.ts: parsing proc(5) mountinfo lines and ordering mounts for unmounting. */
import assert from "node:assert/strict";
import { mountAt, mountsUnder, parseMountInfo } from "../../lib/mount/mountinfo.ts";

// Shapes from this machine's /proc/self/mountinfo, plus an escaped space and optional fields.
const TEXT = [
  "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard",
  "45 22 0:40 / /tmp/mnt\\040x ro,relatime - overlay composefs ro,lowerdir+=/,datadir+=/tmp/objects,redirect_dir=on,metacopy=on",
  "46 45 0:41 / /tmp/mnt\\040x/sub rw,relatime shared:7 master:2 - tmpfs none rw,size=1024k",
  "47 22 7:3 / /tmp/other rw,relatime - xfs /dev/loop3 rw,attr2",
  "48 45 0:42 / /tmp/mnt\\040x rw - tmpfs tmpfs rw",
  "",
].join("\n");

Deno.test("parseMountInfo: fields, octal escapes and optional fields", () => {
  const e = parseMountInfo(TEXT);
  assert.equal(e.length, 5);
  assert.deepEqual(e[1], {
    mountId: 45,
    parentId: 22,
    root: "/",
    mountPoint: "/tmp/mnt x",
    mountOptions: "ro,relatime",
    fsType: "overlay",
    source: "composefs",
    superOptions: "ro,lowerdir+=/,datadir+=/tmp/objects,redirect_dir=on,metacopy=on",
  });
  assert.deepEqual([e[2].fsType, e[2].source, e[2].mountPoint], ["tmpfs", "none", "/tmp/mnt x/sub"]);
  assert.throws(() => parseMountInfo("1 2 3"), /malformed mountinfo line/);
});

Deno.test("mountAt: the topmost of stacked mounts, null when none", () => {
  const e = parseMountInfo(TEXT);
  assert.equal(mountAt("/tmp/mnt x", e)?.mountId, 48);
  assert.equal(mountAt("/tmp/other", e)?.fsType, "xfs");
  assert.equal(mountAt("/tmp", e), null);
});

Deno.test("mountsUnder: deepest first, upper of a stack before lower, prefix is a path boundary", () => {
  const e = parseMountInfo(TEXT);
  assert.deepEqual(mountsUnder("/tmp/mnt x", e).map((m) => m.mountId), [46, 48, 45]);
  assert.deepEqual(mountsUnder("/tmp/mnt", e), []);
  assert.deepEqual(mountsUnder("/tmp", e).map((m) => m.mountId), [46, 48, 47, 45]);
});

Deno.test("readMountInfo-based lookups work on this process's table", () => {
  assert.notEqual(mountAt("/"), null);
});
