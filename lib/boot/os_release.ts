/**
 * os-release files as composefs-rs reads them (oci-and-boot.md §8.6) and the names bootc takes
 * from them for boot entries (bootc-layout.md §1.5). Pure.
 *
 * @module
 */

/**
 * Unquotes an os-release value: `"…"` (a backslash escapes the next character), `'…'` (literal)
 * and bare characters, concatenated; an unterminated quote makes the value absent (null).
 */
function unquote(raw: string): string | null {
  const v = raw.trim();
  let out = "";
  for (let i = 0; i < v.length;) {
    const c = v[i];
    if (c === '"' || c === "'") {
      let j = i + 1;
      let closed = false;
      while (j < v.length) {
        if (c === '"' && v[j] === "\\" && j + 1 < v.length) {
          out += v[j + 1];
          j += 2;
          continue;
        }
        if (v[j] === c) {
          closed = true;
          break;
        }
        out += v[j++];
      }
      if (!closed) return null;
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The fields of an os-release text; comment lines skipped, later duplicates win. */
export function parseOsRelease(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim().startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const value = unquote(line.slice(eq + 1));
    if (value === null) fields.delete(line.slice(0, eq));
    else fields.set(line.slice(0, eq), value);
  }
  return fields;
}

/** What a BLS entry of an image is called (bootc-layout.md §1.5); `fallback` is the deployment id. */
export interface EntryNames {
  /** `ID`, `bootc` without one: file names and sort keys. */
  osId: string;
  /** `PRETTY_NAME`, else `NAME`, else `ID`, else the fallback. */
  title: string;
  /** `VERSION_ID`, else `VERSION`, else the fallback. */
  version: string;
}

/** The entry names bootc derives from an image's os-release (null when the image has none). */
export function entryNames(osRelease: Map<string, string> | null, fallback: string): EntryNames {
  const f = osRelease ?? new Map<string, string>();
  const pick = (...keys: string[]) => keys.map((k) => f.get(k)).find((v) => v !== undefined && v !== "");
  return {
    osId: pick("ID") ?? "bootc",
    title: pick("PRETTY_NAME", "NAME", "ID") ?? fallback,
    version: pick("VERSION_ID", "VERSION") ?? fallback,
  };
}
