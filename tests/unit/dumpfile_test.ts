/** Dumpfile parser and canonical writer (composefs-formats.md §5) against the C-produced dumps. */
import assert from "node:assert/strict";
import {
  dumpfileText,
  escapeField,
  escapeOptional,
  parseDumpfile,
  parseDumpfileStream,
  parseLine,
  unescapeField,
  writeDumpfile,
} from "../../lib/dumpfile/mod.ts";
import { Directory, type Leaf, lookup } from "../../lib/tree/mod.ts";
import { VECTORS } from "../helpers/paths.ts";
import { randomTree, Rng } from "../helpers/random_tree.ts";

const enc = new TextEncoder();
const vector = (name: string) => Deno.readFileSync(`${VECTORS}/erofs/${name}`);
const parse = (text: string) => parseDumpfile(enc.encode(text));
const ROOT = "/ 0 40755 2 0 0 0 0.0 - - -\n";

Deno.test("escaping follows composefs-info: \\\\ \\n \\r \\t, \\xHH outside 0x21..0x7e, = in xattrs", () => {
  // Byte strings: "\xe9" is the single byte 0xe9.
  assert.equal(escapeField("a b\\c\n\r\t\x7f\x80=\xe9"), "a\\x20b\\\\c\\n\\r\\t\\x7f\\x80=\\xe9");
  assert.equal(escapeField("k=v", true), "k\\x3dv");
  assert.equal(escapeOptional(""), "-");
  assert.equal(escapeOptional("-"), "\\x2d");
  assert.equal(escapeOptional("--"), "--");
  assert.equal(unescapeField("\\x41\\x3d\\\\\\n\\t\\r\\xFf"), "A=\\\n\t\r\xff");
  assert.throws(() => unescapeField("\\q"), /escape/);
  assert.throws(() => unescapeField("\\x4"), /escape/);
  const rng = new Rng(5);
  for (let i = 0; i < 200; i++) {
    const s = String.fromCharCode(...rng.bytes(1 + rng.int(40)));
    assert.equal(unescapeField(escapeField(s, true)), s);
  }
});

Deno.test("the canonical writer is a fixed point over the C dumps", () => {
  for (const name of ["v0.dump", "default.dump", "epoch.dump", "hardlinks.dump", "hardlinks-input.dump"]) {
    const once = dumpfileText(parseDumpfile(vector(name)));
    assert.equal(dumpfileText(parse(once)), once, name);
  }
});

Deno.test("both hardlink forms parse to the same shared leaf", () => {
  const a = parseDumpfile(vector("hardlinks-input.dump"));
  const b = parseDumpfile(vector("hardlinks.dump"));
  assert.equal(dumpfileText(a), dumpfileText(b));
  assert.ok(lookup(a, "/a") === lookup(a, "/b"));
  assert.deepEqual([...writeDumpfile(a)], [
    "/ 0 40755 2 0 0 0 0.0 - - -",
    "/a 16 100644 2 0 0 0 0.0 - hello\\x20composefs\\n -",
    "/b 0 @120000 - - - - 0.0 /a - -",
    "/big 65 100644 2 0 0 0 0.0 f7/9d6b9233303b86b8d0b93fd0ded98fb1fd77b345cfa0b3ea255dab25acd019 - " +
    "f79d6b9233303b86b8d0b93fd0ded98fb1fd77b345cfa0b3ea255dab25acd019",
    "/big2 0 @120000 - - - - 0.0 /big - -",
  ]);
});

Deno.test("the canonical dump of the golden tree keeps C's lines apart from directory sizes", () => {
  // C prints real directory sizes; the canonical writer prints 0. Everything else is identical for v0.dump.
  const c = new TextDecoder().decode(vector("v0.dump")).trim().split("\n");
  const ours = [...writeDumpfile(parseDumpfile(vector("v0.dump")))];
  assert.equal(ours.length, c.length);
  ours.forEach((line, i) => {
    const f = c[i].split(" ");
    if (f[2].startsWith("4")) f[1] = "0";
    assert.equal(line, f.join(" "));
  });
});

Deno.test("every field is parsed", () => {
  const e = parseLine("/a\\x20b 5 100644 1 10 20 0 123.456 - a\\x3db\\n - user.x=1 trusted.y\\x3d=\\x00");
  assert.equal(e.path, "/a b");
  assert.deepEqual([e.size, e.mode, e.nlink, e.uid, e.gid, e.rdev, e.mtimeSec, e.mtimeNsec], [
    5,
    0o100644,
    1,
    10,
    20,
    0,
    123,
    456,
  ]);
  assert.equal(e.content, "a=b\n");
  assert.deepEqual(e.xattrs.map(([k, v]) => [k, [...v]]), [["user.x", [0x31]], ["trusted.y=", [0]]]);
  const root = parse(ROOT + "/f 3 100644 1 0 0 0 1.1 - abc - user.k=2 user.k=10\n");
  const f = root.get("f") as Leaf;
  assert.deepEqual([f.stat.mtimeSec, f.stat.mtimeNsec], [1, 1]);
  // Duplicate names: the greatest value survives, as in composefs-rs.
  assert.deepEqual([...f.stat.xattrs.get("user.k")!], [0x32]);
});

Deno.test("file types map to leaf kinds", () => {
  const h = "ab".repeat(32);
  const root = parse(
    ROOT +
      `/ext 100 100644 1 0 0 0 0.0 ab/${h.slice(2)} - ${h}\n` +
      `/nov 100 100644 1 0 0 0 0.0 ../x/ab/${h.slice(2)} - -\n` +
      "/sparse 100 100644 1 0 0 0 0.0 - - -\n" +
      "/empty 0 100644 1 0 0 0 0.0 - - -\n" +
      "/ln 3 120777 1 0 0 0 0.0 abc - -\n" +
      "/c 0 20644 1 0 0 259 0.0 - - -\n/b 0 60644 1 0 0 1792 0.0 - - -\n" +
      "/p 0 10644 1 0 0 0 0.0 - - -\n/s 0 140644 1 0 0 0 0.0 - - -\n/d 0 40700 2 0 0 0 0.0 - - -\n",
  );
  const kind = (n: string) => (root.get(n) as Leaf).content.kind;
  assert.deepEqual(
    ["ext", "nov", "sparse", "empty", "ln", "c", "b", "p", "s"].map(kind),
    ["external", "external-noverity", "sparse", "inline", "symlink", "chardev", "blockdev", "fifo", "socket"],
  );
  assert.ok(root.get("d") instanceof Directory);
  assert.equal((root.get("d") as Directory).stat.mode, 0o700);
});

Deno.test("malformed dumpfiles are rejected with the line number", () => {
  const bad: Array<[string, RegExp]> = [
    ["/a 0 100644 1 0 0 0 0.0 - - -\n", /line 1: the first entry must be the root/],
    [ROOT + "/a/b 0 100644 1 0 0 0 0.0 - - -\n", /line 2: parent directory/],
    [ROOT + "/a 0 100644 1 0 0 0 0.0 - -\n", /at least 11 fields/],
    [ROOT + "/a 0 100644 1 0 0 0 0.1000000000 - - -\n", /nanoseconds/],
    [ROOT + "/a 0 100644 1 0 0 0 0 - - -\n", /mtime/],
    [ROOT + "/a 0 @100644 - - - - 0.0 /nope - -\n", /hardlink target/],
    [ROOT + "/d 0 40755 2 0 0 0 0.0 - - -\n/e 0 @40755 - - - - 0.0 /d - -\n", /directory cannot be a hardlink/],
    [ROOT + "/w 0 20644 2 0 0 0 0.0 - - -\n", /whiteout/],
    [ROOT + "/a 0 100644 1 0 0 0 0.0 - - - \n", /xattr/],
    [ROOT + "/a 0 100644 1 0 0 0 0.0 - - - novalue\n", /xattr without/],
    [ROOT + "/a 0 170644 1 0 0 0 0.0 - - -\n", /unknown file type/],
    [ROOT + "/a 0 120777 1 0 0 0 0.0 - - -\n", /symlink without a target/],
    [ROOT + "/a 0 100644 1 0 0 5 0.0 - - -\n", /rdev/],
    [ROOT + "/a/../b 0 100644 1 0 0 0 0.0 - - -\n", /invalid path/],
    [ROOT + "/a 0 100644 1 0 0 0 0.0 - \\q -\n", /escape/],
    [ROOT + "/a 0 100644 1 0 0 0 0.0 zz - -\n", /object path/],
    ["", /empty/],
  ];
  for (const [text, re] of bad) assert.throws(() => parse(text), re, JSON.stringify(text));
});

Deno.test("blank lines, CRLF and a missing final newline are accepted; duplicates replace", () => {
  const root = parse(
    "\n" + ROOT.replace("\n", "\r\n") + "   \n/a 1 100644 1 0 0 0 0.0 - x -\n/a 1 100644 1 0 0 0 0.0 - y -",
  );
  assert.deepEqual([...(root.get("a") as Leaf & { content: { data: Uint8Array } }).content.data], [0x79]);
});

Deno.test("the streaming parser agrees with the in-memory one, whatever the chunking", async () => {
  const bytes = vector("default.dump");
  const want = dumpfileText(parseDumpfile(bytes));
  for (const size of [1, 7, 4096, bytes.length]) {
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += size) c.enqueue(bytes.slice(i, i + size));
        c.close();
      },
    });
    assert.equal(dumpfileText(await parseDumpfileStream(stream)), want, `chunk ${size}`);
  }
});

Deno.test("random trees round-trip through the canonical dumpfile", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const root = randomTree(seed, { maxInline: 5000 });
    const text = dumpfileText(root);
    assert.ok(dumpfileText(parse(text)) === text, `seed ${seed}`);
  }
});
