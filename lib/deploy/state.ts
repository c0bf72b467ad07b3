/**
 * A deployment's state directory (bootc-layout.md §1.1, §3.5 step 10, §3.1 step 5f):
 * `state/deploy/<id>/` with `etc/` as the image has it (minus `.updated`), `var` →
 * `../../os/default/var` and `<id>.origin`. It is built as `state/.deploy-<id>.tmp` and renamed
 * into place, so GC and status never see half a deployment, and a staged deployment's `/etc` can
 * be checked against the running one before anything is visible.
 *
 * @module
 */
import type { BootImage } from "../oci/boot_image.ts";
import type { Digest } from "../oci/digest.ts";
import type { Repository } from "../repository/mod.ts";
import { fsyncDir } from "../runtime/durable.ts";
import { removeIfExists } from "../runtime/files.ts";
import { Directory } from "../tree/mod.ts";
import { checkoutTree } from "./checkout.ts";
import { formatOrigin, originReference } from "./origin.ts";

/** What `<id>.origin` records. */
export interface OriginFacts {
  /** The image reference as pulled (`docker://…`, `oci:…`). */
  imgref: string;
  manifestDigest: Digest;
  /** Hex SHA-256 of vmlinuz followed by the initramfs. */
  bootDigest: string;
}

/** What {@link prepareState} needs. */
export interface StateOptions {
  /** The physical root (holds `state/`). */
  physicalRoot: string;
  repo: Repository;
  boot: BootImage;
  origin: OriginFacts;
  /** Install: (re)seed `state/os/default/var` from the image. A staged deployment shares the existing one. */
  seedVar: boolean;
  log: (message: string) => void;
}

/** Builds the state of deployment `o.boot.id` under a temporary name and returns that directory. */
export function prepareState(o: StateOptions): string {
  const state = `${o.physicalRoot}/state`;
  Deno.mkdirSync(`${state}/deploy`, { recursive: true });
  const tmp = `${state}/.deploy-${o.boot.id}.tmp`;
  removeIfExists(tmp, { recursive: true });
  Deno.mkdirSync(`${tmp}/etc`, { recursive: true });
  const etc = o.boot.root.get("etc");
  if (etc instanceof Directory) {
    const s = checkoutTree(o.repo, etc, `${tmp}/etc`);
    o.log(`copied /etc: ${s.files} files, ${s.directories} directories`);
    removeIfExists(`${tmp}/etc/.updated`, { recursive: true });
  }
  Deno.symlinkSync("../../os/default/var", `${tmp}/var`);
  const origin = formatOrigin({
    imageReference: originReference(o.origin.imgref),
    bootType: "bls",
    bootDigest: o.origin.bootDigest,
    manifestDigest: o.origin.manifestDigest,
  });
  Deno.writeTextFileSync(`${tmp}/${o.boot.id}.origin`, origin, { mode: 0o644 });
  const osDir = `${state}/os/default`;
  if (o.seedVar) seedSharedVar(o, osDir);
  else Deno.mkdirSync(`${osDir}/var`, { recursive: true });
  return tmp;
}

/** Renames a state built by {@link prepareState} to `state/deploy/<id>` (replacing a leftover of an interrupted run). */
export function commitState(physicalRoot: string, id: string, tmp: string): string {
  const dest = `${physicalRoot}/state/deploy/${id}`;
  removeIfExists(dest, { recursive: true });
  Deno.renameSync(tmp, dest);
  fsyncDir(`${physicalRoot}/state/deploy`);
  return dest;
}

/**
 * `state/os/default/var` as the image's `/var` (§3.1 step 5f: bootc copies it over whatever is
 * there). Install only runs on a root without deployments, so what is there can only be the
 * leftover of an interrupted install: the copy is made beside and replaces it whole.
 */
function seedSharedVar(o: StateOptions, osDir: string): void {
  Deno.mkdirSync(osDir, { recursive: true });
  const tmp = `${osDir}/.var.tmp`;
  removeIfExists(tmp, { recursive: true });
  Deno.mkdirSync(tmp, { mode: 0o755 });
  const imageVar = o.boot.root.get("var");
  if (imageVar instanceof Directory) {
    const s = checkoutTree(o.repo, imageVar, tmp);
    o.log(`seeded the shared /var: ${s.files} files, ${s.directories} directories`);
  }
  removeIfExists(`${osDir}/var`, { recursive: true });
  Deno.renameSync(tmp, `${osDir}/var`);
}
