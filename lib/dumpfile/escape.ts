/**
 * Dumpfile field escaping (composefs-formats.md §5.2). Fields are byte strings (see lib/tree).
 *
 * @module
 */
import type { ByteString } from "../tree/tree.ts";

const HEX = "0123456789abcdef";

/** Escapes one field; `equal` also escapes `=` (xattr keys and values). */
export function escapeField(s: ByteString, equal = false): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x20 && c < 0x7f && c !== 0x5c && !(equal && c === 0x3d)) continue;
    out += s.slice(start, i);
    start = i + 1;
    if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else out += "\\x" + HEX[c >> 4] + HEX[c & 15];
  }
  return start === 0 ? s : out + s.slice(start);
}

/** Escapes an optional field: empty → `-`, a lone `-` → `\x2d`. */
export function escapeOptional(s: ByteString | null): string {
  if (s === null || s === "") return "-";
  if (s === "-") return "\\x2d";
  return escapeField(s);
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Reverses {@link escapeField}; throws on an unknown or truncated escape. */
export function unescapeField(s: string): ByteString {
  if (!s.includes("\\")) return s;
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) !== 0x5c) continue;
    out += s.slice(start, i);
    const e = s[i + 1];
    if (e === "\\") out += "\\";
    else if (e === "n") out += "\n";
    else if (e === "r") out += "\r";
    else if (e === "t") out += "\t";
    else if (e === "x") {
      const hi = hexDigit(s.charCodeAt(i + 2)), lo = hexDigit(s.charCodeAt(i + 3));
      if (hi < 0 || lo < 0) throw new Error(`invalid \\x escape in ${JSON.stringify(s)}`);
      out += String.fromCharCode(hi * 16 + lo);
      i += 2;
    } else {
      throw new Error(`invalid escape sequence in ${JSON.stringify(s)}`);
    }
    i++;
    start = i + 1;
  }
  return out + s.slice(start);
}

/** Unescapes an optional field: `-` → null. */
export function unescapeOptional(s: string): ByteString | null {
  return s === "-" ? null : unescapeField(s);
}
