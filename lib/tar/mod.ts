/**
 * Streaming tar reader and writer with composefs-rs/tar-core semantics: raw header bytes kept,
 * PAX and GNU extensions, SCHILY xattrs as bytes, strict validation, trailing bytes after the
 * end-of-archive marker preserved (oci-and-boot.md §4.2).
 *
 * @example
 * ```ts
 * import { readTar } from "./mod.ts";
 * for await (const ev of readTar(stream)) if (ev.type === "entry") console.log(ev.path, ev.size);
 * ```
 *
 * @module
 */
export { readTar } from "./reader.ts";
export type { TarEnd, TarEntry, TarEntryKind, TarEvent, TarGlobalHeader, TarLimits, TarMeta } from "./reader.ts";
export { buildTar, encodeHeader, END_OF_ARCHIVE, paxRecord, writeTar } from "./writer.ts";
export type { TarBuildItem, TarWriteEntry, TarWriteItem, TarWriteKind } from "./writer.ts";
export { BLOCK, computeChecksum, paddingOf, parsePaxRecords, setChecksum } from "./header.ts";
export type { PaxRecord, TarTime } from "./header.ts";
export { absoluteTarPath, normalizeTarPath } from "./path.ts";
export { ChunkReader, fileSource, iterableSource, READ_SIZE, readFileChunks } from "./source.ts";
export type { ByteSource } from "./source.ts";
export { INLINE_CONTENT_MAX, tarSegments } from "./segments.ts";
export type { TarSegment } from "./segments.ts";
