import assert from "node:assert/strict";
import { type BlsEntry, grubFileOrder, parseBlsEntry } from "../../lib/boot/bls.ts";
import { rollbackMenu, splitCmdline, stagedMenu, upgradeCmdline } from "../../lib/boot/menu_update.ts";
import { blsMenu, systemdBootOrder } from "../../lib/deploy/status.ts";

const A = "a".repeat(128);
const B = "b".repeat(128);

function entry(version: string, id: string, sortKey = "bootc-fedora-0"): BlsEntry {
  return parseBlsEntry(
    `title Fedora ${version}\nversion ${version}\nlinux /boot/bootc_composefs-${id}/vmlinuz\n` +
      `initrd /boot/bootc_composefs-${id}/initrd\noptions root=UUID=x rw composefs=${id}\nsort-key ${sortKey}\n`,
  );
}

Deno.test("splitCmdline: spaces separate arguments except inside double quotes", () => {
  assert.deepEqual(splitCmdline(' root=UUID=x  rw\tfoo="a b" quiet '), ["root=UUID=x", "rw", 'foo="a b"', "quiet"]);
  assert.throws(() => splitCmdline('foo="a b'), /unterminated quote/);
});

Deno.test("upgradeCmdline: composefs= replaced in place, ? kept, kargs.d changes applied, manual kargs kept", () => {
  const booted = `root=UUID=x rw quiet composefs=?${A} console=tty0 console=ttyS0,115200 by-hand=1`;
  assert.equal(
    upgradeCmdline(booted, B, ["console=tty0", "console=ttyS0,115200"], ["console=ttyS0,115200", "mitigations=off"]),
    `root=UUID=x rw quiet composefs=?${B} console=ttyS0,115200 by-hand=1 mitigations=off`,
  );
  assert.equal(upgradeCmdline(`rw composefs=${A}`, B, [], []), `rw composefs=${B}`);
  // An argument the old image had and the new one keeps stays where it is, once.
  assert.equal(upgradeCmdline(`composefs=${A} x=1 y`, B, ["x=1"], ["x=1", "z"]), `composefs=${B} x=1 y z`);
  assert.throws(() => upgradeCmdline("rw quiet", B, [], []), /no composefs= argument/);
});

Deno.test("stagedMenu: the new entry primary, the booted one secondary, named so the new one sorts first", () => {
  // A switch to a lower version: upstream would name the booted entry fedora-42-0 and GRUB would keep booting it.
  const files = stagedMenu(entry("41", B), entry("42", A), "fedora");
  assert.deepEqual([...files.keys()], ["bootc_fedora-41-1.conf", "bootc_fedora-41-0.conf"]);
  const [[primaryName], [secondaryName]] = [...files];
  assert.ok(grubFileOrder(primaryName, secondaryName) < 0, "GRUB shows the new entry first");
  const parsed = [...files.values()].map(parseBlsEntry);
  assert.equal(parsed[0].options, `root=UUID=x rw composefs=${B}`);
  assert.deepEqual(parsed.map((e) => e.sortKey), ["bootc-fedora-0", "bootc-fedora-1"]);
  assert.equal(parsed[1].version, "42", "the booted entry keeps its own version line");
  assert.ok(systemdBootOrder(parsed[0], parsed[1]) < 0, "systemd-boot shows the new entry first");
  assert.deepEqual(blsMenu(files, new Map(), "grub").map((m) => m.verity), [B, A]);
  assert.deepEqual(blsMenu(files, new Map(), "systemd").map((m) => m.verity), [B, A]);
});

Deno.test("rollbackMenu: the second entry becomes the first, twice restores the order", () => {
  const menu = [entry("43", B), entry("42", A, "bootc-fedora-1")];
  const once = rollbackMenu(menu);
  assert.deepEqual(blsMenu(once, new Map(), "grub").map((m) => m.verity), [A, B]);
  assert.deepEqual([...once.keys()], ["bootc_bootc-42-1.conf", "bootc_bootc-42-0.conf"]);
  const reordered = [...once].sort(([a], [b]) => grubFileOrder(a, b)).map(([, t]) => parseBlsEntry(t));
  const twice = rollbackMenu(reordered);
  assert.deepEqual(blsMenu(twice, new Map(), "grub").map((m) => m.verity), [B, A]);
  assert.deepEqual(blsMenu(twice, new Map(), "systemd").map((m) => m.verity), [B, A]);
  assert.throws(() => rollbackMenu([menu[0]]), /exactly 2 boot entries, the menu has 1/);
});
