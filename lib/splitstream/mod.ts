/**
 * Splitstreams: a byte stream stored as inline bytes plus references to repository objects
 * (composefs-formats.md §3).
 *
 * @module
 */
export {
  contentType,
  contentTypeName,
  type FileRange,
  HEADER_SIZE,
  type Info,
  INFO_SIZE,
  INLINE_CONTENT_MAX,
  MAGIC,
} from "./format.ts";
export { compareBytes, SplitStreamWriter } from "./writer.ts";
export { type Chunk, SplitStream } from "./reader.ts";
