/**
 * A layer tar cut the way composefs-rs's `split_async` stores it (oci-and-boot.md §4.3): header
 * bytes, small contents, padding and everything after the end-of-archive marker inline; the
 * content of each regular file larger than 64 bytes as one external object.
 *
 * @module
 */
import { type ByteSource } from "./source.ts";
import { readTar, type TarEntry, type TarLimits } from "./reader.ts";

/** composefs-rs `INLINE_CONTENT_MAX_V0`: regular files up to this size are stored inline. */
export const INLINE_CONTENT_MAX = 64;

/** One piece of a layer, in stream order; all pieces concatenated are the tar, byte for byte. */
export type TarSegment =
  | { type: "inline"; bytes: Uint8Array }
  /** A regular file's content (exactly `entry.size` bytes); read `chunks` before the next segment. */
  | { type: "external"; entry: TarEntry; size: number; chunks: AsyncGenerator<Uint8Array> };

/**
 * Hears of each member before its content segments: a regular file of ≤ 64 bytes with its
 * `content` (a view that is only valid during the call).
 */
export type EntryHook = (entry: TarEntry, content?: Uint8Array) => void;

/**
 * The segments of a layer tar. Adjacent inline pieces are not merged (the splitstream writer
 * coalesces them). Entries of any other kind, and files of ≤ 64 bytes, are inline.
 *
 * @example
 * ```ts
 * for await (const s of tarSegments(decompressLayer(blob, mediaType))) {
 *   if (s.type === "inline") writer.inline(s.bytes);
 *   else writer.external(await storeObject(s.chunks, s.size));
 * }
 * ```
 */
export async function* tarSegments(
  src: AsyncIterable<Uint8Array> | ByteSource,
  limits?: TarLimits,
  onEntry?: EntryHook,
): AsyncGenerator<TarSegment> {
  for await (const ev of readTar(src, limits)) {
    if (ev.type === "global") {
      yield { type: "inline", bytes: ev.headerBytes };
    } else if (ev.type === "end") {
      if (ev.marker.length) yield { type: "inline", bytes: ev.marker };
      for await (const c of ev.trailing()) yield { type: "inline", bytes: c };
    } else {
      yield { type: "inline", bytes: ev.headerBytes };
      if (ev.kind === "file") {
        if (ev.size > INLINE_CONTENT_MAX) {
          onEntry?.(ev);
          const read = { n: 0 };
          yield { type: "external", entry: ev, size: ev.size, chunks: counted(ev.body(), read) };
          // Skipping the rest would silently store a truncated object.
          if (read.n !== ev.size) throw new Error(`external content of ${JSON.stringify(ev.path)} was not read whole`);
        } else {
          const bytes = await ev.bytes();
          onEntry?.(ev, bytes);
          if (bytes.length) yield { type: "inline", bytes };
        }
      } else {
        onEntry?.(ev);
        for await (const c of ev.body()) yield { type: "inline", bytes: c };
      }
      const pad = await ev.padding();
      if (pad.length) yield { type: "inline", bytes: pad };
    }
  }
}

async function* counted(src: AsyncGenerator<Uint8Array>, read: { n: number }): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    read.n += c.length;
    yield c;
  }
}
