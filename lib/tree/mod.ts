/**
 * The in-memory filesystem tree shared by EROFS and dumpfile code. See README.md.
 *
 * @module
 */
export * from "./tree.ts";
export { type EntryLog, EntryLogWriter, readEntryLog } from "./entry_log.ts";
export {
  type EntryMeta,
  type LayerEntry,
  layerEntry,
  type LayerItem,
  LayerMergeError,
  LayerMerger,
  layerPath,
  makedev,
} from "./merge.ts";
export { type OciTransformOptions, scratchRootStat, transformForOci, type XattrMode } from "./transform.ts";
export { BootTransformError, selinuxPolicyName, transformForBoot } from "./boot_transform.ts";
