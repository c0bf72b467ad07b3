/**
 * composefs dumpfiles (composefs-formats.md §5): parser and canonical writer. See README.md.
 *
 * @module
 */
export { escapeField, escapeOptional, unescapeField, unescapeOptional } from "./escape.ts";
export {
  type BuildOptions,
  type DumpEntry,
  DumpfileParser,
  MAX_INLINE_CONTENT,
  MAX_SYMLINK,
  parseDumpfile,
  parseDumpfileStream,
  parseLine,
  parseObjectPath,
  TreeBuilder,
} from "./parse.ts";
export { dumpfileText, formatXattrs, objectPath, writeDumpfile } from "./write.ts";
