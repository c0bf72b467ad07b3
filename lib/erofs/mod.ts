/**
 * composefs EROFS images: writer (V0/V1 C-compatible, V2), reader, and C's dump. See README.md.
 *
 * @module
 */
export * from "./format.ts";
export { chooseVersion, writeImage, writeImageTo, type WriteOptions } from "./writer.ts";
export {
  imageObjects,
  ImageReader,
  MAX_IMAGE_SIZE,
  type RawDirent,
  type RawInode,
  readImage,
  type ReadResult,
  walkImage,
} from "./reader.ts";
export { dumpImage } from "./dump.ts";
