/**
 * The composefs repository (composefs-formats.md §1, §6): `meta.json`, objects, streams, images,
 * refs and tags, locks, fsck and garbage collection.
 *
 * @module
 */
export {
  algorithmName,
  checkAccess,
  effectiveFormats,
  type ErofsFormat,
  type ErofsFormats,
  META_VERSION,
  newMeta,
  parseAlgorithm,
  parseMeta,
  type RepoMeta,
  serializeMeta,
} from "./meta.ts";
export {
  isObjectId,
  type ObjectId,
  objectIdBytes,
  objectIdFromBytes,
  objectIdFromLinkTarget,
  objectSubpath,
  parseObjectId,
} from "./objectid.ts";
export { decodeTag, encodeTag, type LinkKind, relativeTarget } from "./names.ts";
export {
  type InitOptions,
  type OpenOptions,
  type Producer,
  readAllFd,
  Repository,
  type Stored,
  type StoreMethod,
} from "./repository.ts";
export { type LegacyUpgrade, upgradeLegacyLayout } from "./legacy.ts";
export { gc, type GcOptions, type GcResult, type ImageObjects } from "./gc.ts";
export { fsck, type FsckOptions, type FsckProblem, type FsckResult } from "./fsck.ts";
