/**
 * The entry log (lib/tree/entry_log.ts): what the layer import records of each tar member must
 * read back as exactly what the merge would get from parsing the tar again — every field the merge
 * uses, for every kind of member and every extension the tar reader applies — and the file
 * contents, inline or the next object in order. A damaged log is an error, never a wrong tree.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BLOCK, buildTar, setChecksum, type TarMeta, tarSegments } from "../../lib/tar/mod.ts";
import { readTar } from "../../lib/tar/mod.ts";
import { type EntryLog, EntryLogWriter, readEntryLog } from "../../lib/tree/entry_log.ts";
import type { LeafContent } from "../../lib/tree/mod.ts";

const te = new TextEncoder();
const gen = (n: number, seed: string) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed.length * 7) & 0xff);
const digestOf = (data: Uint8Array) => new Uint8Array(createHash("sha512").update(data).digest());

/** A tar with every kind of member, each extension the reader applies, and contents around the 64-byte line. */
function sampleTar(): Uint8Array {
  const tar = buildTar([
    { entry: { path: "./", kind: "dir", mtime: 1700000000, uid: 0, gid: 0 } },
    { entry: { path: "usr", kind: "dir", mode: 0o755, mtime: "1700000000.123456789" } },
    { entry: { path: "usr/lib", kind: "dir", mtime: 0 } },
    { entry: { path: "usr/lib/empty", kind: "file", mtime: 1 }, data: new Uint8Array(0) },
    { entry: { path: "usr/lib/s64", kind: "file", mode: 0o4755, uid: 4294967295, gid: 123456 }, data: gen(64, "a") },
    {
      entry: { path: "usr/lib/s65", kind: "file", xattrs: { "security.capability": gen(20, "c") } },
      data: gen(65, "b"),
    },
    {
      entry: {
        path: `usr/lib/${"long-name-".repeat(20)}`,
        kind: "file",
        xattrs: { "user.ünï": "välue", "user.e": "" },
      },
      data: gen(5000, "big"),
    },
    { entry: { path: "usr/lib/ünïcødé ✓", kind: "file" }, data: te.encode("small\n") },
    { entry: { path: "usr/lib/hard", kind: "hardlink", linkTarget: "usr/lib/s65" } },
    { entry: { path: "usr/lib/sym", kind: "symlink", linkTarget: `../${"x".repeat(150)}/target` } },
    { entry: { path: "usr/null", kind: "char", devMajor: 1, devMinor: 3 } },
    { entry: { path: "usr/sda", kind: "block", devMajor: 8, devMinor: 2097151 } },
    { entry: { path: "usr/fifo", kind: "fifo", mtime: 2 ** 40 } },
    { entry: { path: "usr/.wh..wh..opq", kind: "file" }, data: new Uint8Array(0) },
    { entry: { path: "usr/other", kind: "file" }, data: new Uint8Array(0) },
    { entry: { path: "usr/z-last", kind: "file" }, data: gen(100_000, "z") },
  ]);
  // "usr/other" becomes a member of an unknown type ('V'), which the merge must still see as such.
  const name = te.encode("usr/other\0");
  let at = 0;
  while (!name.every((b, i) => tar[at + i] === b)) at += BLOCK;
  const h = tar.subarray(at, at + BLOCK);
  h[156] = "V".charCodeAt(0);
  setChecksum(h);
  return tar;
}

async function* once(bytes: Uint8Array, chunk = 777): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += chunk) yield bytes.slice(i, i + chunk);
}

/** The log the layer import writes: entries through tarSegments' hook, each external file's digest in turn. */
async function logOf(tar: Uint8Array): Promise<EntryLog> {
  const w = new EntryLogWriter("sha512");
  for await (const seg of tarSegments(once(tar), undefined, (e, content) => w.entry(e, content))) {
    if (seg.type !== "external") continue;
    const h = createHash("sha512");
    for await (const c of seg.chunks) h.update(c);
    w.object(new Uint8Array(h.digest()));
  }
  return w.finish();
}

const FIELDS = [
  "kind",
  "typeflag",
  "pathBytes",
  "linkBytes",
  "mode",
  "uid",
  "gid",
  "devMajor",
  "devMinor",
  "xattrs",
] as const;

Deno.test("entry log: every member reads back as the tar reader parsed it, contents inline or by object", async () => {
  const tar = sampleTar();
  const expected: { meta: TarMeta; file?: LeafContent }[] = [];
  for await (const ev of readTar(once(tar))) {
    if (ev.type !== "entry") continue;
    let file: LeafContent | undefined;
    if (ev.kind === "file") {
      const data = await ev.bytes(1 << 20);
      file = data.length > 64
        ? { kind: "external", id: { alg: "sha512", digest: digestOf(data) }, size: data.length }
        : { kind: "inline", data: data.slice() };
    }
    expected.push({ meta: { ...ev, pathBytes: ev.pathBytes.slice(), mtime: { ...ev.mtime } }, file });
  }
  const log = await logOf(tar);
  assert.equal(log.count, expected.length);
  assert.equal(log.objects.length, 3 * 64);
  const got = [...readEntryLog(log, "sha512")];
  assert.equal(got.length, expected.length);
  for (const [i, { meta, file }] of got.entries()) {
    const want = expected[i];
    const what = new TextDecoder().decode(want.meta.pathBytes);
    for (const k of FIELDS) assert.deepEqual(meta[k], want.meta[k], `${what}: ${k}`);
    assert.equal(meta.mtime.sec, want.meta.mtime.sec, `${what}: mtime`);
    assert.equal(meta.mtime.nsec, want.meta.mtime.nsec, `${what}: mtime ns`);
    assert.deepEqual(file, want.file, `${what}: content`);
  }
  // The fixture covers what it claims.
  const kinds = new Set(got.map((g) => g.meta.kind));
  for (const k of ["file", "hardlink", "symlink", "char", "block", "dir", "fifo", "other"]) {
    assert.ok(kinds.has(k as never), k);
  }
  assert.ok(got.some((g) => g.meta.mtime.nsec === 123456789));
  assert.ok(got.some((g) => g.meta.xattrs.get("user.ünï")?.length === 6));
  assert.ok(got.some((g) => g.meta.pathBytes.length > 200));
});

Deno.test("entry log: numbers at their limits (negative and 2^53 times, 32-bit owners, no device numbers)", () => {
  const w = new EntryLogWriter("sha256");
  const base = {
    kind: "dir" as const,
    typeflag: "5",
    pathBytes: te.encode("a"),
    linkBytes: null,
    mode: 0o40755,
    uid: 2 ** 32 - 1,
    gid: 0,
    devMajor: null,
    devMinor: null,
    xattrs: new Map<string, Uint8Array>(),
    size: 0,
  };
  const times = [{ sec: -5, nsec: 999999999 }, { sec: 2 ** 53 - 1, nsec: 0 }, { sec: -(2 ** 40), nsec: 1 }];
  for (const t of times) w.entry({ ...base, mtime: { ...t, pax: null } });
  w.entry({
    ...base,
    kind: "char",
    typeflag: "3",
    devMajor: 0,
    devMinor: 2 ** 32,
    mtime: { sec: 0, nsec: 0, pax: null },
  });
  const got = [...readEntryLog(w.finish(), "sha256")];
  assert.deepEqual(got.slice(0, 3).map((g) => ({ sec: g.meta.mtime.sec, nsec: g.meta.mtime.nsec })), times);
  assert.equal(got[0].meta.uid, 2 ** 32 - 1);
  assert.equal(got[0].meta.devMajor, null);
  assert.deepEqual([got[3].meta.devMajor, got[3].meta.devMinor], [0, 2 ** 32]);
  assert.deepEqual(got.map((g) => g.meta.pathBytes), Array(4).fill(te.encode("a")));
});

Deno.test("entry log: paths share their prefix with the one before, so a layer packs small", async () => {
  const items = Array.from({ length: 2000 }, (_, i) => ({
    entry: {
      path: `usr/share/doc/some-package-name/examples/file-${String(i).padStart(5, "0")}`,
      kind: "fifo" as const,
    },
  }));
  const log = await logOf(buildTar(items));
  assert.equal(log.count, 2000);
  assert.ok(log.entries.length / 2000 < 24, `${log.entries.length / 2000} bytes per entry`);
  const last = [...readEntryLog(log, "sha512")].at(-1)!;
  assert.equal(new TextDecoder().decode(last.meta.pathBytes), "usr/share/doc/some-package-name/examples/file-01999");
});

Deno.test("entry log: a damaged log is refused", async () => {
  const log = await logOf(sampleTar());
  const read = (l: EntryLog) => [...readEntryLog(l, "sha512")];
  const corrupt = /entry log is corrupt/;
  assert.throws(() => read({ ...log, entries: log.entries.subarray(0, log.entries.length - 3) }), corrupt);
  assert.throws(() => read({ ...log, count: log.count - 1 }), /bytes after the last entry/);
  assert.throws(() => read({ ...log, objects: log.objects.subarray(64) }), /more files than objects/);
  assert.throws(() => read({ ...log, objects: new Uint8Array(log.objects.length + 64) }), /more objects than files/);
  const bad = log.entries.slice();
  bad[0] = 99;
  assert.throws(() => read({ ...log, entries: bad }), /unknown kind/);
  // The writer refuses what it cannot record faithfully.
  const w = new EntryLogWriter("sha512");
  assert.throws(() => w.object(new Uint8Array(32)), /32-byte object digest/);
  const small = { ...[...readEntryLog(log, "sha512")][3].meta, size: 10 };
  assert.throws(() => w.entry(small, new Uint8Array(3)), /10-byte file without its content/);
});
