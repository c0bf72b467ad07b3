import assert from "node:assert/strict";
import { parseBlsEntry } from "../../lib/boot/bls.ts";
import { errorChain } from "../../lib/error/mod.ts";
import { parseUserCfg, USER_CFG_HEADER } from "../../lib/boot/grub_menu.ts";
import { type Listings, planBlsMigration, type PlanContext, planGrubMigration } from "../../lib/boot/prefix_plan.ts";

// Deterministic ids as bootc's TestRoot makes them; real ones are 128 hex, the logic must not care.
const A = "a".repeat(64), B = "b".repeat(64), C = "c".repeat(64);
const P = "bootc_composefs-";

function listings(l: Partial<Record<keyof Listings, string[]>>): Listings {
  return { type1: new Set(l.type1 ?? []), uki: new Set(l.uki ?? []), legacyUki: new Set(l.legacyUki ?? []) };
}

function type1(version: string, dir: string, verity: string, sortKey: string): string {
  return (`title Fedora\nversion ${version}\nlinux /boot/${dir}/vmlinuz\ninitrd /boot/${dir}/initrd\n` +
    `options root=UUID=x rw composefs=${verity}\nsort-key ${sortKey}\n`);
}

function ctx(l: Listings, booted: string | null = B): PlanContext {
  return { listings: l, osId: "fedora", booted };
}

/** A legacy system: A installed, B a user-space upgrade that shares A's kernel directory; B booted. */
function legacyMenu(): Map<string, Map<string, string>> {
  return new Map([["entries", new Map([["b.conf", type1("43", A, B, "s0")], ["a.conf", type1("42", A, A, "s1")]])]]);
}

Deno.test("prefix plan: a shared kernel directory is renamed once, every entry that uses it rewritten", () => {
  const plan = planBlsMigration(legacyMenu(), ctx(listings({ type1: [A, "loader"] })));
  assert.deepEqual(plan.renames, [{ from: { dir: "type1", name: A }, to: { dir: "type1", name: P + A } }]);
  const files = plan.menus.get("entries")!;
  // The booted entry is the primary by its composefs= digest, though its kernel directory is A's
  // (bootc compares the directory name and would call it the secondary).
  assert.deepEqual([...files.keys()].sort(), ["bootc_fedora-42-0.conf", "bootc_fedora-43-1.conf"]);
  const b = parseBlsEntry(files.get("bootc_fedora-43-1.conf")!);
  assert.equal(b.linux, `/boot/${P}${A}/vmlinuz`);
  assert.deepEqual(b.initrd, [`/boot/${P}${A}/initrd`]);
  assert.equal(b.options, `root=UUID=x rw composefs=${B}`);
  assert.equal(b.sortKey, "s0");
});

Deno.test("prefix plan: nothing to do once migrated (idempotent)", () => {
  const first = planBlsMigration(legacyMenu(), ctx(listings({ type1: [A] })));
  const menus = new Map([[
    "entries",
    first.menus.get("entries")!,
  ]]);
  const again = planBlsMigration(menus, ctx(listings({ type1: [P + A] })));
  assert.deepEqual(again.renames, []);
  assert.equal(again.menus.size, 0);
});

Deno.test("prefix plan: entries with the prefix stay in the menu (bootc drops them)", () => {
  const menus = legacyMenu();
  menus.get("entries")!.set("bootc_fedora-44-0.conf", type1("44", P + C, C, "s2"));
  const plan = planBlsMigration(menus, ctx(listings({ type1: [A, P + C] })));
  const files = plan.menus.get("entries")!;
  assert.equal(files.size, 3);
  assert.equal(parseBlsEntry(files.get("bootc_fedora-44-0.conf")!).linux, `/boot/${P}${C}/vmlinuz`);
});

Deno.test("prefix plan: entries of other systems are carried over untouched", () => {
  const menus = legacyMenu();
  const foreign = "# kernel-install\ntitle Debian\nversion 6.1\nlinux /0123abcd/6.1/linux\noptions\troot=/dev/sda2\n";
  menus.get("entries")!.set("debian.conf", foreign);
  menus.get("entries")!.set("win.conf", "title Windows\nversion 11\nefi /EFI/Microsoft/bootmgfw.efi\n");
  menus.get("entries")!.set("shell.conf", "version 1\nefi /shell.img\n");
  menus.get("entries")!.set("plain.conf", "version 1\nlinux /vmlinuz\n");
  const plan = planBlsMigration(menus, ctx(listings({ type1: [A] })));
  const files = plan.menus.get("entries")!;
  assert.equal(files.get("debian.conf"), foreign, "byte for byte, comment and tab included");
  assert.ok(files.has("win.conf") && files.has("shell.conf") && files.has("plain.conf"));
  assert.equal(plan.renames.length, 1);
  const onlyForeign = new Map([["entries", new Map([["debian.conf", foreign]])]]);
  assert.equal(planBlsMigration(onlyForeign, ctx(listings({}))).menus.size, 0);
});

Deno.test("prefix plan: after a crash between renames and the menu switch, entries are healed, not refused", () => {
  const plan = planBlsMigration(legacyMenu(), ctx(listings({ type1: [P + A] })));
  assert.deepEqual(plan.renames, []);
  assert.equal(plan.menus.get("entries")!.size, 2);
  assert.throws(() => planBlsMigration(legacyMenu(), ctx(listings({ type1: [] }))), /kernel directory a+ .*not found/);
});

Deno.test("prefix plan: an entry keeps the priority its file name gives (a queued rollback stays queued)", () => {
  const menus = new Map([[
    "entries",
    new Map([
      ["bootc_fedora-43-0.conf", type1("43", A, B, "s1")],
      ["bootc_fedora-42-1.conf", type1("42", A, A, "s0")],
    ]),
  ]]);
  const plan = planBlsMigration(menus, ctx(listings({ type1: [A] }), B));
  assert.deepEqual([...plan.menus.get("entries")!.keys()].sort(), ["bootc_fedora-42-1.conf", "bootc_fedora-43-0.conf"]);
});

Deno.test("prefix plan: two entries that would share a file name keep their own names", () => {
  const menus = new Map([[
    "entries",
    new Map([["x.conf", type1("42", A, A, "k")], ["y.conf", type1("42", B, B, "k")]]),
  ]]);
  const plan = planBlsMigration(menus, ctx(listings({ type1: [A, B] }), C));
  assert.deepEqual([...plan.menus.get("entries")!.keys()].sort(), ["bootc_fedora-42-0.conf", "y.conf"]);
});

Deno.test("prefix plan: not booted, the first entry in GRUB's order is the primary", () => {
  const plan = planBlsMigration(legacyMenu(), ctx(listings({ type1: [A] }), null));
  // "b.conf" sorts first in GRUB's descending file-name order; it boots B.
  assert.ok(plan.menus.get("entries")!.has("bootc_fedora-43-1.conf"));
});

Deno.test("prefix plan: UKIs and their addon directories, from EFI/Linux/bootc and the older EFI/Linux", () => {
  const uki = (id: string, key = "efi") => `title T\nversion 1\n${key} /EFI/Linux/bootc/${id}.efi\nsort-key k\n`;
  const menus = new Map([
    ["entries", new Map([["a.conf", uki(A, "uki")], ["b.conf", uki(B)]])],
    ["entries.staged", new Map([["c.conf", uki(C)]])],
  ]);
  const l = listings({
    uki: [`${A}.efi`, `${A}.efi.extra.d`, `${C}.efi`, `other.efi`],
    legacyUki: [`${B}.efi`, "bootc", `${P}${A}`],
  });
  const plan = planBlsMigration(menus, ctx(l, A));
  assert.deepEqual(plan.renames.map((r) => `${r.from.dir}/${r.from.name} -> ${r.to.dir}/${r.to.name}`), [
    `uki/${A}.efi -> uki/${P}${A}.efi`,
    `uki/${A}.efi.extra.d -> uki/${P}${A}.efi.extra.d`,
    `legacyUki/${B}.efi -> uki/${P}${B}.efi`,
    `uki/${C}.efi -> uki/${P}${C}.efi`,
  ]);
  const a = parseBlsEntry(plan.menus.get("entries")!.get("bootc_fedora-1-1.conf")!);
  assert.deepEqual(a.efi, { key: "uki", path: `/EFI/Linux/bootc/${P}${A}.efi` });
  assert.ok(plan.menus.get("entries.staged")!.has("bootc_fedora-1-1.conf"));
  assert.throws(() => planBlsMigration(menus, ctx(listings({}), A)), /UKI a+\.efi of a boot entry not found/);
});

Deno.test("prefix plan: GRUB user.cfg chainloaders, staged menu included; a password-only user.cfg is left alone", () => {
  const cfg = (ids: string[]) =>
    USER_CFG_HEADER +
    ids.map((id) => `menuentry "OS: (${id})" {\ninsmod fat\nchainloader /EFI/Linux/${id}.efi\n}\n`).join("");
  const menus = new Map([["user.cfg", cfg([B, A])], ["user.cfg.staged", cfg([P + C, B])]]);
  const plan = planGrubMigration(menus, ctx(listings({ uki: [`${B}.efi`, `${P}${C}.efi`], legacyUki: [`${A}.efi`] })));
  assert.deepEqual(plan.renames.map((r) => r.to.name), [`${P}${B}.efi`, `${P}${A}.efi`]);
  const live = parseUserCfg(plan.menus.get("user.cfg")!.get("user.cfg")!);
  assert.deepEqual(live.map((e) => e.chainloader), [`/EFI/Linux/bootc/${P}${B}.efi`, `/EFI/Linux/bootc/${P}${A}.efi`]);
  assert.deepEqual(live.map((e) => e.title), [`OS: (${B})`, `OS: (${A})`]);
  const staged = parseUserCfg(plan.menus.get("user.cfg.staged")!.get("user.cfg.staged")!);
  assert.equal(staged[0].chainloader, `/EFI/Linux/${P}${C}.efi`);
  const none = planGrubMigration(
    new Map([["user.cfg", "GRUB2_PASSWORD=grub.pbkdf2.sha512.10000.AB\n"]]),
    ctx(listings({})),
  );
  assert.equal(none.menus.size, 0);
  const other = 'menuentry "Windows" {\nchainloader +1\n}\n';
  assert.equal(planGrubMigration(new Map([["user.cfg", other]]), ctx(listings({}))).menus.size, 0);
  assert.throws(
    () => planGrubMigration(new Map([["user.cfg", 'menuentry "" {\n}\n']]), ctx(listings({}))),
    (e) => /^reading user\.cfg: menuentry with an empty title$/.test(errorChain(e)),
  );
});
