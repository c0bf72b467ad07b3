/**
 * The command tree of bootcfs: each top-level command's name and summary, and where its definition
 * is. A command lives in its own file in this folder, exporting a `CommandBody`; add it here. The
 * files are imported only when their command is selected (`LazyCommand`), so that `bootcfs X` does
 * not pay for loading every other command's modules (lib/oci, lib/podman, FFI libraries…). The
 * specifiers stay literal so that `deno compile` still embeds them.
 *
 * @module
 */
import type { LazyCommand } from "../cli/command.ts";
import type { ImageResolver } from "./mount.ts";

/** `mount`'s lookup of image names in the repository; lib/oci is imported only for a name, not a path. */
const ociImages: ImageResolver = async (name, repo) => (await import("./oci.ts")).ociImageResolver(name, repo);

/** Top-level commands, in the order `bootcfs --help` lists them. */
export const COMMANDS: LazyCommand[] = [
  {
    name: "digest",
    summary: "print the fs-verity digest of files (like `fsverity digest`)",
    load: async () => (await import("./digest.ts")).digestCommand,
  },
  {
    name: "mount",
    summary: "mount a composefs image on a directory",
    load: async () => (await import("./mount.ts")).mountCommandWith(ociImages),
  },
  {
    name: "umount",
    summary: "unmount a composefs mount",
    load: async () => (await import("./mount.ts")).umountCommand,
  },
  {
    name: "repo",
    summary: "composefs repository: init, fsck, gc",
    load: async () => (await import("./repo.ts")).repoCommand,
  },
  {
    name: "pull",
    summary: "pull an image into the composefs repository (directly, or through bootcfs's containers-storage)",
    load: async () => (await import("./pull.ts")).pullCommand,
  },
  {
    name: "oci",
    summary: "OCI images in the repository: pull, images, inspect, tag, untag, compute-id, mount",
    load: async () => (await import("./oci.ts")).ociCommand,
  },
  {
    name: "install",
    summary: "install an image as the first deployment of a new system (bootc install to-filesystem)",
    load: async () => (await import("./install.ts")).installCommand,
  },
  {
    name: "status",
    summary: "show the deployments: staged, booted, rollback and others (bootc status)",
    load: async () => (await import("./status.ts")).statusCommand,
  },
  {
    name: "upgrade",
    summary: "stage the newest version of the image the booted system follows (bootc upgrade)",
    load: async () => (await import("./upgrade.ts")).upgradeCommand,
  },
  {
    name: "switch",
    summary: "stage another image as the next deployment (bootc switch)",
    load: async () => (await import("./upgrade.ts")).switchCommand,
  },
  {
    name: "rollback",
    summary: "boot the rollback deployment next (bootc rollback)",
    load: async () => (await import("./rollback.ts")).rollbackCommand,
  },
  {
    name: "composefs-finalize-staged",
    summary: "merge /etc into the staged deployment and make it the default (run at shutdown)",
    load: async () => (await import("./finalize.ts")).finalizeCommand,
  },
  {
    name: "config-diff",
    summary: "list how the running /etc differs from the booted image's (bootc config-diff)",
    load: async () => (await import("./config_diff.ts")).configDiffCommand,
  },
  {
    name: "delete-deployment",
    summary: "delete a deployment that is not booted, and what only it used (bootc delete-deployment)",
    load: async () => (await import("./delete_deployment.ts")).deleteDeploymentCommand,
  },
  {
    name: "usr-overlay",
    summary: "mount a transient writable overlay on /usr (bootc usr-overlay)",
    load: async () => (await import("./usr_overlay.ts")).usrOverlayCommand,
  },
  {
    name: "internals",
    summary: "bootc's internal commands: composefs-gc",
    load: async () => (await import("./internals.ts")).internalsCommand,
  },
  {
    name: "mkcomposefs",
    summary: "build a composefs image from a directory or dumpfile (like C mkcomposefs)",
    load: async () => (await import("./mkcomposefs.ts")).mkcomposefsCommand,
  },
  {
    name: "dump",
    summary: "print the dumpfile of a composefs image (like composefs-info dump)",
    load: async () => (await import("./dump.ts")).dumpCommand,
  },
];
