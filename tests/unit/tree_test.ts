/** The in-memory tree model (lib/tree). */
import assert from "node:assert/strict";
import {
  byteString,
  countLinks,
  Directory,
  insert,
  latin1Decode,
  latin1Encode,
  Leaf,
  lookup,
  newStat,
  S_IFCHR,
  S_IFLNK,
  S_IFREG,
  splitPath,
  utf8,
  walk,
} from "../../lib/tree/mod.ts";

const file = (data = "") => new Leaf(newStat({ mode: 0o644 }), { kind: "inline", data: latin1Encode(data) });

Deno.test("byte strings convert losslessly, including 0x80-0x9f", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(latin1Encode(latin1Decode(bytes)), bytes);
  // Without 0x80-0x9f the fast decoder path is taken; it must agree.
  const high = Uint8Array.from({ length: 96 }, (_, i) => 0xa0 + i);
  assert.equal(latin1Decode(high), String.fromCharCode(...high));
  assert.equal(byteString("é"), "\xc3\xa9");
  assert.equal(utf8("\xc3\xa9"), "é");
});

Deno.test("entries are listed in byte order, not UTF-16 order", () => {
  const d = new Directory();
  for (const n of ["b", "\xc3\xa9", "a", ".x", "-x", "A", "\x7f"]) d.set(n, file());
  assert.deepEqual([...d.names()], ["-x", ".x", "A", "a", "b", "\x7f", "\xc3\xa9"]);
  d.delete("a");
  d.set("aa", file());
  assert.deepEqual([...d.names()], ["-x", ".x", "A", "aa", "b", "\x7f", "\xc3\xa9"]);
});

Deno.test("insert and lookup by path, with and without creating parents", () => {
  const root = new Directory();
  assert.throws(() => insert(root, "/a/b", file()), /parent directory/);
  insert(root, "/a/b", file("x"), () => newStat({ mode: 0o755 }));
  assert.ok(lookup(root, "/a") instanceof Directory);
  assert.ok(lookup(root, "/a/b") instanceof Leaf);
  assert.equal(lookup(root, "/a/b/c"), undefined);
  assert.equal(lookup(root, "/"), root);
  assert.throws(() => insert(root, "/", file()), /root/);
  assert.throws(() => splitPath("a/b"), /absolute/);
  assert.throws(() => splitPath("/a//b"), /invalid path/);
  assert.throws(() => root.set("x/y", file()), /invalid file name/);
  assert.throws(() => root.set("..", file()), /invalid file name/);
  assert.throws(() => root.set("n".repeat(256), file()), /255/);
});

Deno.test("hardlinks are shared leaves; countLinks counts names", () => {
  const root = new Directory();
  const f = file("data");
  insert(root, "/a", f);
  insert(root, "/d", new Directory());
  insert(root, "/d/b", f);
  insert(root, "/c", file());
  const links = countLinks(root);
  assert.equal(links.get(f), 2);
  assert.equal(links.get(lookup(root, "/c") as Leaf), 1);
  assert.deepEqual([...walk(root)].map(([p]) => p), ["/", "/a", "/c", "/d", "/d/b"]);
  assert.equal(root.subdirCount(), 1);
});

Deno.test("leaf type, size and whiteout flags", () => {
  const s = newStat({ mode: 0o100755 });
  assert.equal(s.mode, 0o755);
  assert.equal(new Leaf(s, { kind: "symlink", target: "abc" }).fileType, S_IFLNK);
  assert.equal(new Leaf(s, { kind: "symlink", target: "abc" }).size, 3);
  assert.equal(new Leaf(s, { kind: "sparse", size: 9 }).fileType, S_IFREG);
  const w = new Leaf(s, { kind: "chardev", rdev: 0 });
  assert.equal(w.fileType, S_IFCHR);
  assert.ok(w.isWhiteout);
  assert.ok(!new Leaf(s, { kind: "chardev", rdev: 1 }).isWhiteout);
});

Deno.test("walk handles deep trees without recursion", () => {
  const root = new Directory();
  let d = root;
  for (let i = 0; i < 20000; i++) {
    const next = new Directory();
    d.set("d", next);
    d = next;
  }
  assert.equal([...walk(root)].length, 20001);
});
