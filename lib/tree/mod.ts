/**
 * The in-memory filesystem tree shared by EROFS and dumpfile code. See README.md.
 *
 * @module
 */
export * from "./tree.ts";
export {
  type LayerEntry,
  layerEntry,
  type LayerItem,
  LayerMergeError,
  LayerMerger,
  layerPath,
  makedev,
} from "./merge.ts";
export { type OciTransformOptions, scratchRootStat, transformForOci, type XattrMode } from "./transform.ts";
