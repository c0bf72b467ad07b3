/**
 * The /etc three-way diff (bootc-layout.md §3.16) on in-memory trees: each case states the three
 * trees and the expected added / modified / removed lists and conflicts, worked out from the
 * spec's rules by hand.
 */
import assert from "node:assert/strict";
import { diffTrees, type EtcEntry, type EtcEntryKind, type EtcKinds, type EtcTree } from "../../lib/deploy/etc_diff.ts";

const te = new TextEncoder();

function entry(kind: EtcEntryKind, extra: Partial<EtcEntry> = {}): EtcEntry {
  const type = { dir: 0o040000, file: 0o100000, symlink: 0o120000 }[kind];
  const perm = { dir: 0o755, file: 0o644, symlink: 0o777 }[kind];
  return { kind, mode: type | perm, uid: 0, gid: 0, xattrs: new Map(), identity: kind === "dir" ? "" : "x", ...extra };
}
const dir = (extra: Partial<EtcEntry> = {}) => entry("dir", extra);
const file = (identity: string, extra: Partial<EtcEntry> = {}) => entry("file", { identity, ...extra });
const link = (target: string, extra: Partial<EtcEntry> = {}) => entry("symlink", { identity: target, ...extra });
const xattrs = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k, te.encode(v)]));

const tree = (o: Record<string, EtcEntry>): EtcTree => new Map(Object.entries(o));
const kinds = (t: EtcTree): EtcKinds => new Map([...t].map(([p, e]) => [p, e.kind]));

/** A base /etc shared by the cases: pristine = current = new unless a case changes it. */
function base(): Record<string, EtcEntry> {
  return {
    "hosts": file("h1"),
    "ssh": dir(),
    "ssh/sshd_config": file("s1"),
    "ssh/sshd_config.d": dir(),
    "ssh/sshd_config.d/10-x.conf": file("x1"),
    "localtime": link("../usr/share/zoneinfo/UTC"),
  };
}

function diff(p: Record<string, EtcEntry>, c: Record<string, EtcEntry>, n: Record<string, EtcEntry> = p) {
  return diffTrees(tree(p), tree(c), kinds(tree(n)));
}

const noChange = { added: [], modified: [], removed: [] };

Deno.test("etc diff: identical trees have no diff, whatever new holds", () => {
  const n = base();
  delete n["ssh/sshd_config.d"];
  delete n["ssh/sshd_config.d/10-x.conf"];
  n["hosts"] = dir();
  assert.deepEqual(diff(base(), base(), n), { diff: noChange, conflicts: [] });
});

Deno.test("etc diff: an added directory brings itself and every descendant, depth first in name order", () => {
  const c = {
    ...base(),
    "myapp": dir({ mode: 0o040750, uid: 1000 }),
    "myapp/z.conf": file("z"),
    "myapp/conf.d": dir(),
    "myapp/conf.d/a.conf": file("a"),
    "myapp/a.conf": file("a"),
    "ssh/sshd_config.d/20-local.conf": file("l"),
  };
  const r = diff(base(), c);
  assert.deepEqual(r.diff, {
    added: [
      "myapp",
      "myapp/a.conf",
      "myapp/conf.d",
      "myapp/conf.d/a.conf",
      "myapp/z.conf",
      "ssh/sshd_config.d/20-local.conf",
    ],
    modified: [],
    removed: [],
  });
  assert.deepEqual(r.conflicts, []);
});

Deno.test("etc diff: metadata, xattrs, content and symlink targets each make a path modified", () => {
  const cases: [string, EtcEntry][] = [
    ["hosts", file("h1", { mode: 0o100600 })],
    ["hosts", file("h1", { mode: 0o104644 })], // setuid alone
    ["hosts", file("h1", { uid: 1000 })],
    ["hosts", file("h1", { gid: 4 })],
    ["hosts", file("h1", { xattrs: xattrs({ "user.a": "1" }) })],
    ["hosts", file("h2")],
    ["localtime", link("../usr/share/zoneinfo/Europe/Paris")],
    ["ssh", dir({ mode: 0o040700 })],
    ["ssh", dir({ xattrs: xattrs({ "security.selinux": "system_u:object_r:etc_t:s0" }) })],
  ];
  for (const [path, changed] of cases) {
    const r = diff(base(), { ...base(), [path]: changed });
    assert.deepEqual(r.diff, { added: [], modified: [path], removed: [] }, JSON.stringify(changed));
    assert.deepEqual(r.conflicts, []);
  }
  // The same xattrs in another order, and a value of another length, are told apart correctly.
  const p = { ...base(), hosts: file("h1", { xattrs: xattrs({ "user.a": "1", "user.b": "2" }) }) };
  const same = { ...base(), hosts: file("h1", { xattrs: xattrs({ "user.b": "2", "user.a": "1" }) }) };
  const longer = { ...base(), hosts: file("h1", { xattrs: xattrs({ "user.a": "1", "user.b": "22" }) }) };
  const renamed = { ...base(), hosts: file("h1", { xattrs: xattrs({ "user.a": "1", "user.c": "2" }) }) };
  assert.deepEqual(diff(p, same).diff, noChange);
  assert.deepEqual(diff(p, longer).diff.modified, ["hosts"]);
  assert.deepEqual(diff(p, renamed).diff.modified, ["hosts"]);
});

Deno.test("etc diff: a type change is a modification; a file that became a directory brings its contents", () => {
  // file → symlink
  let r = diff(base(), { ...base(), hosts: link("/run/hosts") });
  assert.deepEqual(r.diff, { added: [], modified: ["hosts"], removed: [] });
  // directory → file: its old contents are not listed as removed (the file replaces the whole
  // directory). Mergeable if the new image agrees, a conflict if it still has the directory.
  const c: Record<string, EtcEntry> = { ...base(), "ssh/sshd_config.d": file("flat") };
  delete c["ssh/sshd_config.d/10-x.conf"];
  r = diff(base(), c, c);
  assert.deepEqual(r.diff, { added: [], modified: ["ssh/sshd_config.d"], removed: [] });
  assert.deepEqual(r.conflicts, []);
  assert.deepEqual(diff(base(), c, base()).conflicts, [{
    path: "ssh/sshd_config.d",
    reason: "File 'ssh/sshd_config.d' now defaults to a directory in new etc",
  }]);
  // file → directory with contents
  const c2 = { ...base(), "hosts": dir(), "hosts/a": file("a"), "hosts/b": dir(), "hosts/b/c": link("x") };
  r = diff(base(), c2, c2);
  assert.deepEqual(r.diff, { added: ["hosts/a", "hosts/b", "hosts/b/c"], modified: ["hosts"], removed: [] });
  assert.deepEqual(r.conflicts, []);
  assert.deepEqual(diff(base(), c2, base()).conflicts, [
    { path: "hosts", reason: "Directory 'hosts' now defaults to a file in new etc" },
  ]);
});

Deno.test("etc diff: a removed directory is listed once, removed files each", () => {
  const c = base();
  delete c["ssh/sshd_config.d"];
  delete c["ssh/sshd_config.d/10-x.conf"];
  delete c["hosts"];
  delete c["localtime"];
  assert.deepEqual(diff(base(), c).diff, {
    added: [],
    modified: [],
    removed: ["hosts", "localtime", "ssh/sshd_config.d"],
  });
});

Deno.test("etc diff: a directory dropped by the new image is listed before the local changes it holds", () => {
  const p: Record<string, EtcEntry> = {
    ...base(),
    "old": dir(),
    "old/sub": dir(),
    "old/sub/kept": file("k"),
    "old/other": file("o"),
  };
  const n: Record<string, EtcEntry> = base();
  // Only a modification inside: the directories go to `modified`, ahead of the file.
  let r = diff(p, { ...p, "old/sub/kept": file("k2") }, n);
  assert.deepEqual(r.diff, { added: [], modified: ["old", "old/sub", "old/sub/kept"], removed: [] });
  assert.deepEqual(r.conflicts, []);
  // An addition inside: the directories go to `added`, ahead of it; the modification stays.
  r = diff(p, { ...p, "old/sub/kept": file("k2"), "old/sub/new": file("n") }, n);
  assert.deepEqual(r.diff, { added: ["old", "old/sub", "old/sub/new"], modified: ["old/sub/kept"], removed: [] });
  // A directory whose own metadata changed is listed once in `modified`, still ahead of its contents.
  r = diff(p, { ...p, "old": dir({ mode: 0o040700 }), "old/other": file("o2") }, n);
  assert.deepEqual(r.diff, { added: [], modified: ["old", "old/other"], removed: [] });
  // Only a removal inside, or no change at all: the new image's deletion wins.
  const c = { ...p };
  delete c["old/other"];
  assert.deepEqual(diff(p, c, n).diff, { added: [], modified: [], removed: ["old/other"] });
  assert.deepEqual(diff(p, p, n).diff, noChange);
  // The new image still has the directory: nothing to recreate.
  r = diff(p, { ...p, "old/sub/kept": file("k2") }, p);
  assert.deepEqual(r.diff, { added: [], modified: ["old/sub/kept"], removed: [] });
});

Deno.test("etc diff: a local directory that new turns into a file is a conflict", () => {
  // Local changes inside a directory that new has as a file (recreate rule + conflict).
  let r = diff(base(), { ...base(), "ssh/sshd_config.d/10-x.conf": file("x2") }, {
    ...base(),
    "ssh/sshd_config.d": file("now a file"),
  });
  assert.deepEqual(r.diff, { added: [], modified: ["ssh/sshd_config.d", "ssh/sshd_config.d/10-x.conf"], removed: [] });
  assert.deepEqual(r.conflicts, [{
    path: "ssh/sshd_config.d",
    reason: "Directory 'ssh/sshd_config.d' now defaults to a file in new etc",
  }]);
  // An added directory where new has a symlink (a symlink is not a directory).
  r = diff(base(), { ...base(), "myapp": dir(), "myapp/a": file("a") }, { ...base(), "myapp": link("/usr/etc") });
  assert.deepEqual(r.conflicts, [{ path: "myapp", reason: "Directory 'myapp' now defaults to a file in new etc" }]);
  // A directory whose metadata alone changed.
  r = diff(base(), { ...base(), ssh: dir({ uid: 7 }) }, { ...base(), ssh: file("s") });
  assert.deepEqual(r.conflicts, [{ path: "ssh", reason: "Directory 'ssh' now defaults to a file in new etc" }]);
  // An untouched directory may become a file: no local change, no conflict.
  r = diff(base(), base(), { ...base(), ssh: file("s") });
  assert.deepEqual(r, { diff: noChange, conflicts: [] });
});

Deno.test("etc diff: a local file that new turns into a directory is a conflict", () => {
  const n = { ...base(), "hosts": dir(), "hosts/x": file("x"), "myapp.conf": dir(), "localtime": dir() };
  const r = diff(base(), { ...base(), "hosts": file("h2"), "myapp.conf": file("m"), "localtime": link("x") }, n);
  assert.deepEqual(r.diff, { added: ["myapp.conf"], modified: ["hosts", "localtime"], removed: [] });
  assert.deepEqual(r.conflicts, [
    { path: "hosts", reason: "File 'hosts' now defaults to a directory in new etc" },
    { path: "localtime", reason: "File 'localtime' now defaults to a directory in new etc" },
    { path: "myapp.conf", reason: "File 'myapp.conf' now defaults to a directory in new etc" },
  ]);
  // An untouched file may become a directory.
  assert.deepEqual(diff(base(), base(), n).conflicts, []);
  // A file inside an added directory is checked too.
  const r2 = diff(base(), { ...base(), "app": dir(), "app/x": file("x") }, { ...base(), "app": dir(), "app/x": dir() });
  assert.deepEqual(r2.conflicts, [{ path: "app/x", reason: "File 'app/x' now defaults to a directory in new etc" }]);
});
