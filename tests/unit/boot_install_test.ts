/**
 * The pure parts of installing a deployment: os-release parsing (oci-and-boot.md §8.6), the names
 * and command line of the entry (bootc-layout.md §1.5, §1.9), the boot transform (§6.6) and boot
 * resource discovery (§8.1).
 */
import assert from "node:assert/strict";
import { bootResources } from "../../lib/boot/resources.ts";
import { entryNames, parseOsRelease } from "../../lib/boot/os_release.ts";
import { installCmdline, primaryType1Entry } from "../../lib/boot/type1.ts";
import { imageKargs, parseKargsFile } from "../../lib/boot/kargs_d.ts";
import { parseBlsEntry } from "../../lib/boot/bls.ts";
import {
  BootTransformError,
  byteString,
  Directory,
  EMPTY_FILE,
  insert,
  Leaf,
  newStat,
  selinuxPolicyName,
  transformForBoot,
} from "../../lib/tree/mod.ts";

Deno.test("os-release: quotes, escapes, comments, later keys win, unterminated quotes drop the value", () => {
  const f = parseOsRelease(
    '# comment\nNAME="Fedora Linux"\nID=fedora\r\nVERSION_ID=42\nPRETTY_NAME=\'It\'"\'"\'s "42"\'\n' +
      'VARIANT="a\\"b\\\\c"\nID=centos\nBROKEN="open\n  # indented comment\nNOEQUALS\n',
  );
  assert.equal(f.get("NAME"), "Fedora Linux");
  assert.equal(f.get("ID"), "centos");
  assert.equal(f.get("VERSION_ID"), "42");
  assert.equal(f.get("PRETTY_NAME"), `It's "42"`);
  assert.equal(f.get("VARIANT"), 'a"b\\c');
  assert.equal(f.has("BROKEN"), false);
  assert.equal(f.size, 5);
});

Deno.test("entry names: PRETTY_NAME > NAME > ID > id for the title, VERSION_ID > VERSION > id, ID or bootc", () => {
  const id = "ab".repeat(64);
  assert.deepEqual(entryNames(parseOsRelease("ID=x\nNAME=X\nVERSION=1 (One)\n"), id), {
    osId: "x",
    title: "X",
    version: "1 (One)",
  });
  assert.deepEqual(entryNames(parseOsRelease("ID=x\n"), id), { osId: "x", title: "x", version: id });
  assert.deepEqual(entryNames(null, id), { osId: "bootc", title: id, version: id });
});

Deno.test("install entry: bootc's command line order, file name, sort key and paths", () => {
  const id = "0f".repeat(64);
  assert.equal(
    installCmdline({
      rootSpec: "UUID=u",
      kargs: ["quiet", "a=b"],
      id,
      insecure: false,
      bootMount: "systemd.mount-extra=UUID=b:/boot:ext4:defaults",
      imageKargs: ["mitigations=off"],
    }),
    `root=UUID=u rw quiet a=b composefs=${id} systemd.mount-extra=UUID=b:/boot:ext4:defaults mitigations=off`,
  );
  assert.equal(
    installCmdline({ rootSpec: null, kargs: [], id, insecure: true, bootMount: null, imageKargs: [] }),
    `rw composefs=?${id}`,
  );
  const names = { osId: "fedora-coreos", title: "Fedora CoreOS 41", version: "41.20251125.0" };
  const e = primaryType1Entry(id, names, "rw", "/boot");
  assert.equal(e.fileName, "bootc_fedora_coreos-41.20251125.0-1.conf");
  assert.equal(
    e.text,
    `title Fedora CoreOS 41\nversion 41.20251125.0\nlinux /boot/bootc_composefs-${id}/vmlinuz\n` +
      `initrd /boot/bootc_composefs-${id}/initrd\noptions rw\nsort-key bootc-fedora-coreos-0\n`,
  );
  // A separate /boot partition: paths from its root. And bootc's parser reads it back.
  const sep = parseBlsEntry(primaryType1Entry(id, names, "rw", "").text);
  assert.equal(sep.linux, `/bootc_composefs-${id}/vmlinuz`);
  assert.deepEqual(sep.initrd, [`/bootc_composefs-${id}/initrd`]);
});

function bootableTree(): Directory {
  const root = new Directory(newStat({ mode: 0o555 }));
  const dir = (mtimeSec: number, mtimeNsec = 0) => new Directory(newStat({ mode: 0o755, mtimeSec, mtimeNsec }));
  const file = () => new Leaf(newStat({ mode: 0o644 }), EMPTY_FILE);
  insert(root, "/usr", dir(500, 7));
  insert(root, "/boot", dir(100, 123));
  insert(root, "/boot/grub2", dir(100));
  insert(root, "/boot/grub2/grubenv", file());
  insert(root, "/sysroot", dir(200, 456));
  insert(root, "/sysroot/ostree", dir(200));
  insert(root, "/etc", dir(300));
  insert(root, "/etc/hostname", file());
  return root;
}

Deno.test("boot transform: /boot and /sysroot emptied with /usr's seconds, nanoseconds kept; the rest untouched", () => {
  const root = bootableTree();
  const etcBefore = root.get("etc");
  transformForBoot(root, () => null);
  const boot = root.get("boot") as Directory, sysroot = root.get("sysroot") as Directory;
  assert.equal(boot.size, 0);
  assert.equal(sysroot.size, 0);
  assert.deepEqual([boot.stat.mtimeSec, boot.stat.mtimeNsec], [500, 123]);
  assert.deepEqual([sysroot.stat.mtimeSec, sysroot.stat.mtimeNsec], [500, 456]);
  assert.equal(root.get("etc"), etcBefore);
  assert.equal((root.get("etc") as Directory).size, 1);
});

Deno.test("boot transform: a missing /usr, /boot or /sysroot and an SELinux policy are refused", () => {
  for (const name of ["usr", "boot", "sysroot"]) {
    const root = bootableTree();
    root.delete(name);
    assert.throws(() => transformForBoot(root, () => null), new RegExp(`no /${name} directory`));
  }
  const root = bootableTree();
  insert(root, "/etc/selinux", new Directory());
  // /etc/selinux without a config (or without SELINUXTYPE) has no policy: nothing to label.
  transformForBoot(root, () => null);
  transformForBoot(bootableTreeWithSelinux(), (p) => p === "/etc/selinux/config" ? "SELINUX=permissive\n" : null);
  assert.throws(
    () => transformForBoot(bootableTreeWithSelinux(), () => "SELINUX=enforcing\n selinuxtype = mls \n"),
    (e) => e instanceof BootTransformError && /SELinux policy "mls"/.test(e.message),
  );
  assert.equal(selinuxPolicyName("# c\nSELINUXTYPE=targeted\nSELINUXTYPE=mls\n"), "targeted");
  assert.equal(selinuxPolicyName("SELINUX=disabled\n"), null);
});

function bootableTreeWithSelinux(): Directory {
  const root = bootableTree();
  insert(root, "/etc/selinux", new Directory());
  return root;
}

Deno.test("boot resources: Type-1 entries, then UKIs, then /usr/lib/modules kernels, each in byte order", () => {
  const root = bootableTree();
  const file = () => new Leaf(newStat({ mode: 0o644 }), EMPTY_FILE);
  const mk = (p: string) => insert(root, byteString(p), new Directory());
  mk("/boot/loader");
  mk("/boot/loader/entries");
  insert(root, "/boot/loader/entries/b.conf", file());
  insert(root, "/boot/loader/entries/a.conf", file());
  insert(root, "/boot/loader/entries/readme", file());
  mk("/boot/EFI");
  mk("/boot/EFI/Linux");
  insert(root, "/boot/EFI/Linux/os.efi", file());
  mk("/boot/EFI/Linux/os.efi.extra.d");
  insert(root, "/boot/EFI/Linux/os.efi.extra.d/x.addon.efi", file());
  mk("/usr/lib");
  mk("/usr/lib/modules");
  for (const k of ["6.2", "6.1", "7.0-nokernel"]) mk(`/usr/lib/modules/${k}`);
  insert(root, "/usr/lib/modules/6.2/vmlinuz", file());
  insert(root, "/usr/lib/modules/6.1/vmlinuz", file());
  insert(root, "/usr/lib/modules/6.1/initramfs.img", file());
  insert(root, "/usr/lib/os-release", file());
  const list = bootResources(root).map((r) =>
    r.kind === "type1"
      ? `t1 ${r.name}`
      : r.kind === "uki"
      ? `uki ${r.path}${r.addon ? " addon" : ""}`
      : `kernel ${r.kver} ${r.initramfs ? "initramfs" : "-"} ${r.osRelease ? "os-release" : "-"}`
  );
  assert.deepEqual(list, [
    "t1 a.conf",
    "t1 b.conf",
    "uki os.efi",
    "uki os.efi.extra.d/x.addon.efi addon",
    "kernel 6.1 initramfs os-release",
    "kernel 6.2 - os-release",
  ]);
});

Deno.test("kargs.d: arrays of basic and literal strings over lines, comments, architectures, name order", () => {
  const files: [string, string][] = [
    ["20-console.toml", "# serial console\nkargs = [\n  \"console=ttyS0,115200n8\", # the first port\n  'quiet',\n]\n"],
    ["10-base.toml", 'kargs = ["a=\\"quoted\\"", "tab\\tx", "\\u00e9"]\nmatch-architectures = ["x86_64", "aarch64"]\n'],
    ["30-arm.toml", 'match-architectures = ["aarch64"]\nkargs = ["arm-only"]'],
    ["README", "not toml"],
  ];
  assert.deepEqual(imageKargs(files, "x86_64"), ['a="quoted"', "tab\tx", "\u00e9", "console=ttyS0,115200n8", "quiet"]);
  assert.deepEqual(imageKargs(files, "aarch64").at(-1), "arm-only");
  assert.deepEqual(parseKargsFile("kargs = []", "empty.toml"), { kargs: [], matchArchitectures: null });
});

Deno.test("kargs.d: unknown keys, tables, non-string values and broken syntax are errors naming file and line", () => {
  const bad: [string, RegExp][] = [
    ['kargs = ["a"]\nfoo = ["b"]', /f\.toml:2: unknown key 'foo'/],
    ['[section]\nkargs = ["a"]', /f\.toml:1: tables are not allowed/],
    ["kargs = [1]", /must be an array of strings/],
    ['kargs = "a"', /must be an array of strings/],
    ['kargs = ["a"', /unterminated array/],
    ['kargs = ["a" "b"]', /expected ',' or '\]'/],
    ['kargs = ["a\nb"]', /f\.toml:1: unterminated string/],
    ['kargs = ["a"]\nkargs = ["b"]', /given twice/],
    ['kargs = ["a"] x', /unexpected 'x'/],
    ['match-architectures = ["x86_64"]', /no 'kargs' array/],
    ['kargs = ["""a"""]', /multi-line strings/],
    ['kargs = ["\\q"]', /bad escape/],
  ];
  for (const [text, error] of bad) assert.throws(() => parseKargsFile(text, "f.toml"), error, text);
});
