import assert from "node:assert/strict";
import * as bls from "../../lib/boot/bls.ts";
import { composefsKarg } from "../../lib/boot/cmdline.ts";
import { formatUserCfg, parseUserCfg, USER_CFG_HEADER } from "../../lib/boot/grub_menu.ts";
import { bootedDeployment, espCandidates, findEsp, osReleaseId } from "../../lib/boot/host.ts";
import type { MountInfoEntry } from "../../lib/mount/mountinfo.ts";

const ID = "7e11ac46e3e022053e7226a20104ac656bf72d1a84e3a398b7cce70e9df188b6";

Deno.test("BLS entry: parsed with bootc's rules and written back in bootc's key order", () => {
  const text = [
    "# a comment",
    "  sort-key bootc-fedora-0  ",
    "title Fedora Linux 42 (Adams)",
    "version 42",
    "linux /boot/bootc_composefs-ab/vmlinuz",
    "initrd /boot/bootc_composefs-ab/initrd",
    "initrd /boot/bootc_composefs-ab/extra.img",
    "options root=UUID=1 rw composefs=?ab",
    "custom one",
    "custom two",
    "other\tkey-with-a-tab-is-dropped",
    "",
  ].join("\n");
  const e = bls.parseBlsEntry(text);
  assert.equal(e.version, "42");
  assert.deepEqual(e.initrd, ["/boot/bootc_composefs-ab/initrd", "/boot/bootc_composefs-ab/extra.img"]);
  assert.equal(e.sortKey, "bootc-fedora-0");
  assert.deepEqual(e.extras, [["custom", "two"]]);
  assert.equal(
    bls.formatBlsEntry(e),
    "title Fedora Linux 42 (Adams)\nversion 42\nlinux /boot/bootc_composefs-ab/vmlinuz\n" +
      "initrd /boot/bootc_composefs-ab/initrd\ninitrd /boot/bootc_composefs-ab/extra.img\n" +
      "options root=UUID=1 rw composefs=?ab\nsort-key bootc-fedora-0\ncustom two\n",
  );
  assert.deepEqual(bls.parseBlsEntry(bls.formatBlsEntry(e)), e);
});

Deno.test("BLS entry: version is mandatory, and exactly one of linux and efi/uki", () => {
  assert.throws(() => bls.parseBlsEntry("title x\nlinux /a/b\n"), /no 'version'/);
  assert.throws(() => bls.parseBlsEntry("version 1\n"), /no 'linux', 'efi' or 'uki'/);
  assert.throws(() => bls.parseBlsEntry("version 1\nlinux /a/b\nefi /c.efi\n"), /both 'linux' and 'efi'/);
  const uki = bls.parseBlsEntry(`version 1\nuki /EFI/Linux/bootc/bootc_composefs-${ID}.efi\n`);
  assert.deepEqual(uki.efi, { key: "uki", path: `/EFI/Linux/bootc/bootc_composefs-${ID}.efi` });
  assert.equal(bls.formatBlsEntry(uki), `version 1\nuki /EFI/Linux/bootc/bootc_composefs-${ID}.efi\n`);
});

Deno.test("BLS entry: artifact names, with and without the prefix", () => {
  const t1 = (linux: string) => bls.parseBlsEntry(`version 1\nlinux ${linux}\n`);
  assert.deepEqual(bls.entryArtifact(t1(`/boot/bootc_composefs-${ID}/vmlinuz`)), { name: ID, hasPrefix: true });
  assert.deepEqual(bls.entryArtifact(t1(`/boot/${ID}/vmlinuz`)), { name: ID, hasPrefix: false });
  assert.deepEqual(bls.entryArtifact(t1("/EFI/Linux/deep/er/dir/vmlinuz")), { name: "dir", hasPrefix: false });
  assert.throws(() => bls.entryArtifact(t1("/vmlinuz")), /no directory/);
  assert.deepEqual(bls.efiArtifact(`/EFI/Linux/bootc/${ID}.efi`), { name: ID, hasPrefix: false });
  assert.throws(() => bls.efiArtifact("/EFI/Linux/bootc/x.img"), /does not end in \.efi/);
});

Deno.test("BLS file names and GRUB's menu order", () => {
  assert.equal(bls.blsFileName("fedora", "41.20251125.0", true), "bootc_fedora-41.20251125.0-1.conf");
  assert.equal(bls.blsFileName("fedora-coreos", "41", false), "bootc_fedora_coreos-41-0.conf");
  const files = ["bootc_fedora-41-0.conf", "bootc_fedora-42-1.conf", "bootc_fedora-41-1.conf"];
  assert.deepEqual(files.sort(bls.grubFileOrder), [
    "bootc_fedora-42-1.conf",
    "bootc_fedora-41-1.conf",
    "bootc_fedora-41-0.conf",
  ]);
});

Deno.test("composefs= on the command line: ? prefix, exact key, composefs.digest= first", () => {
  assert.deepEqual(composefsKarg(`rw composefs=${ID} quiet`), { digest: ID, insecure: false });
  assert.deepEqual(composefsKarg(`composefs=?${ID}`), { digest: ID, insecure: true });
  assert.equal(composefsKarg(""), null);
  assert.equal(composefsKarg(`composefs_backup=${ID} rw`), null);
  assert.deepEqual(composefsKarg(`composefs=aa composefs.digest=?v1-sha512-12:${ID}`), { digest: ID, insecure: true });
});

Deno.test("GRUB user.cfg: header and comments skipped, nested braces, escaped quotes, round trip", () => {
  const text = USER_CFG_HEADER + `
# a comment
menuentry "Fedora \\"42\\": (${ID})" {
    insmod fat
    insmod chain
    # skipped too
    search --no-floppy --set=root --fs-uuid "\${EFI_PART_UUID}"
    set gfxpayload=keep
    if [ x ]; then { echo nested } fi
    chainloader /EFI/Linux/bootc/bootc_composefs-${ID}.efi
}
menuentry "Second" {
chainloader /EFI/Linux/bootc/bootc_composefs-aa.efi
extra_field this is extra
}
`;
  const entries = parseUserCfg(text);
  assert.equal(entries.length, 2);
  assert.equal(entries[0].title, `Fedora "42": (${ID})`);
  assert.deepEqual(entries[0].insmod, ["fat", "chain"]);
  assert.equal(entries[0].search, '--no-floppy --set=root --fs-uuid "${EFI_PART_UUID}"');
  assert.equal(entries[0].chainloader, `/EFI/Linux/bootc/bootc_composefs-${ID}.efi`);
  assert.deepEqual(entries[0].extras, [["if", "[ x ]; then { echo nested } fi"]]);
  assert.deepEqual(entries[1].extras, [["extra_field", "this is extra"]]);
  const again = formatUserCfg(entries);
  assert.ok(again.startsWith(USER_CFG_HEADER));
  assert.deepEqual(parseUserCfg(again), entries);
  assert.throws(() => parseUserCfg('menuentry "" {\n}\n'), /empty title/);
  assert.throws(() => parseUserCfg('menuentry "x" {\nchainloader /a.efi\n'), /no closing brace/);
  assert.deepEqual(parseUserCfg("GRUB2_PASSWORD=grub.pbkdf2.sha512.10000.AB\n"), []);
});

function mount(mountPoint: string, fsType: string): MountInfoEntry {
  return { mountId: 1, parentId: 0, mountPoint, root: "/", mountOptions: "rw", fsType, source: "x", superOptions: "" };
}

Deno.test("host: the ESP where it is mounted; /boot only when vfat", () => {
  const c = espCandidates("/");
  assert.deepEqual(c, ["/sysroot/boot/efi", "/sysroot/efi", "/boot/efi", "/efi", "/boot"]);
  assert.equal(findEsp(c, [mount("/", "ext4"), mount("/boot", "ext4")]), null);
  assert.equal(findEsp(c, [mount("/boot", "ext4"), mount("/boot/efi", "vfat")]), "/boot/efi");
  assert.equal(findEsp(c, [mount("/boot", "vfat")]), "/boot");
  assert.equal(findEsp(espCandidates("/mnt/t/"), [mount("/mnt/t/sysroot/efi", "vfat")]), "/mnt/t/sysroot/efi");
});

Deno.test("host: the booted deployment from /'s mount source; os-release ID", () => {
  assert.equal(bootedDeployment(`composefs:${ID}`), ID);
  assert.equal(bootedDeployment(`transient:composefs=?${ID}`), ID);
  assert.equal(bootedDeployment("/dev/vda"), null);
  assert.equal(osReleaseId('NAME="Fedora Linux"\nID=fedora\n'), "fedora");
  assert.equal(osReleaseId('ID="centos"\n'), "centos");
  assert.equal(osReleaseId(null), "bootc");
});
