/**
 * Pure parsing of one 512-byte tar header block and of PAX extended-header records, with the
 * strictness of tar-core 0.1.0 (oci-and-boot.md §4.2): checksums verified, malformed numbers are
 * errors, PAX values kept as bytes.
 *
 * @module
 */

/** Size of a tar block. */
export const BLOCK = 512;

/** Bytes of padding after `size` bytes of content, up to the next block boundary. */
export function paddingOf(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Header magic: POSIX ustar (`ustar\0` + `00`), GNU (`ustar ` + ` \0`), or neither (V7). */
export type HeaderFormat = "ustar" | "gnu" | "v7";

const td = new TextDecoder();
const tdFatal = new TextDecoder("utf-8", { fatal: true });

/** Bytes of a NUL-terminated field. */
export function field(h: Uint8Array, off: number, len: number): Uint8Array {
  const f = h.subarray(off, off + len);
  const z = f.indexOf(0);
  return z < 0 ? f : f.subarray(0, z);
}

/** The magic of a header block. */
export function headerFormat(h: Uint8Array): HeaderFormat {
  if (h[257] === 0x75 && h[258] === 0x73 && h[259] === 0x74 && h[260] === 0x61 && h[261] === 0x72) {
    if (h[262] === 0 && h[263] === 0x30 && h[264] === 0x30) return "ustar";
    if (h[262] === 0x20 && h[263] === 0x20 && h[264] === 0) return "gnu";
  }
  return "v7";
}

/** True if all 512 bytes are zero. */
export function isZeroBlock(h: Uint8Array): boolean {
  // A real header fails on its first bytes (the name), so a plain loop exits at once.
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

/** The checksum of a header: the unsigned byte sum with the checksum field taken as spaces. */
export function computeChecksum(h: Uint8Array): number {
  let s = 8 * 0x20;
  for (let i = 0; i < 148; i++) s += h[i];
  for (let i = 156; i < BLOCK; i++) s += h[i];
  return s;
}

/** Writes the checksum field (6 octal digits, NUL, space — what GNU tar writes). */
export function setChecksum(h: Uint8Array): void {
  const s = computeChecksum(h).toString(8).padStart(6, "0");
  for (let i = 0; i < 6; i++) h[148 + i] = s.charCodeAt(i);
  h[154] = 0;
  h[155] = 0x20;
}

/**
 * A numeric header field: octal text (leading spaces, trailing spaces/NULs allowed) as a number
 * (12 octal digits always fit), or GNU base-256 (high bit set) as a bigint. Returns null for an
 * empty field; throws on anything else.
 */
export function parseNumericField(h: Uint8Array, off: number, len: number, name: string): number | bigint | null {
  if (h[off] & 0x80) {
    if (h[off] === 0xff) throw new Error(`negative base-256 value in the ${name} field`);
    let v = BigInt(h[off] & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(h[off + i]);
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && h[i] === 0x20) i++;
  let v = 0;
  const start = i;
  while (i < end && h[i] >= 0x30 && h[i] <= 0x37) v = v * 8 + (h[i++] - 0x30);
  for (let k = i; k < end && h[k] !== 0; k++) {
    if (h[k] !== 0x20) {
      throw new Error(`invalid octal number in the ${name} field: ${JSON.stringify(td.decode(h.subarray(off, end)))}`);
    }
  }
  return i === start ? null : v;
}

/** A numeric field as a JS number; empty → 0; values beyond 2^53 are errors. */
export function numberField(h: Uint8Array, off: number, len: number, name: string): number {
  return safeNumber(parseNumericField(h, off, len, name) ?? 0, name);
}

/** `v` as a number, or an error naming `name` when it does not fit exactly. */
export function safeNumber(v: number | bigint, name: string): number {
  if (typeof v === "number") return v;
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${name} value ${v} is too large`);
  return Number(v);
}

/** Verifies the header checksum; throws naming the offset. */
export function verifyChecksum(h: Uint8Array, offset: number): void {
  let stored: number | bigint | null;
  try {
    stored = parseNumericField(h, 148, 8, "checksum");
  } catch {
    stored = null;
  }
  if (stored === null || Number(stored) !== computeChecksum(h)) {
    throw new Error(`invalid tar header checksum at offset ${offset}`);
  }
}

/** One `length key=value\n` record of a PAX extended header. */
export interface PaxRecord {
  key: string;
  value: Uint8Array;
}

function decodeKey(b: Uint8Array, at: number): string {
  let k = "";
  for (let i = 0; i < b.length; i++) {
    if (b[i] >= 0x80) {
      k = "";
      break;
    }
    k += String.fromCharCode(b[i]);
  }
  if (k.length === b.length) return k;
  try {
    return tdFatal.decode(b);
  } catch {
    throw new Error(`malformed PAX extended header record at byte ${at}: key is not UTF-8`);
  }
}

/** Parses PAX records; a malformed record (bad length, no `=`, no newline, non-UTF-8 key) is an error. */
export function parsePaxRecords(data: Uint8Array): PaxRecord[] {
  const out: PaxRecord[] = [];
  let o = 0;
  while (o < data.length) {
    let sp = o;
    let len = 0;
    while (sp < data.length && data[sp] >= 0x30 && data[sp] <= 0x39 && sp - o < 20) len = len * 10 + data[sp++] - 0x30;
    if (sp === o || data[sp] !== 0x20 || len <= sp - o + 1 || o + len > data.length || data[o + len - 1] !== 0x0a) {
      throw new Error(`malformed PAX extended header record at byte ${o}`);
    }
    const rec = data.subarray(sp + 1, o + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new Error(`malformed PAX extended header record at byte ${o}: no key=value`);
    const key = decodeKey(rec.subarray(0, eq), o);
    out.push({ key, value: rec.subarray(eq + 1) });
    o += len;
  }
  return out;
}

/** A PAX decimal value (u64 rules: digits only, optional `+`); anything else is an error. */
export function parsePaxUint(value: Uint8Array | string, key: string): number | bigint {
  const s = typeof value === "string" ? value : td.decode(value);
  if (!/^\+?[0-9]+$/.test(s)) throw new Error(`invalid PAX ${key} value ${JSON.stringify(s)}`);
  const digits = s[0] === "+" ? s.slice(1) : s;
  if (digits.length < 16) return Number(digits);
  const v = BigInt(digits);
  if (v >= 1n << 64n) throw new Error(`invalid PAX ${key} value ${JSON.stringify(s)}: out of range`);
  return v;
}

/** Modification time: whole seconds, nanoseconds, and the PAX text when the time came from PAX. */
export interface TarTime {
  sec: number;
  nsec: number;
  /** The PAX `mtime` value verbatim (e.g. `"1700000000.123456789"`), or null for a header mtime. */
  pax: string | null;
}

/**
 * Splits a PAX mtime: the integer part must be a u64 (else error), the fraction gives nanoseconds
 * (scaled to 9 digits, longer truncated, non-digits → 0), as composefs-rs does.
 */
export function parsePaxMtime(value: Uint8Array): TarTime {
  const s = td.decode(value);
  const dot = s.indexOf(".");
  const sec = safeNumber(parsePaxUint(dot < 0 ? s : s.slice(0, dot), "mtime"), "mtime");
  let nsec = 0;
  if (dot >= 0) {
    const frac = s.slice(dot + 1, dot + 10);
    if (/^[0-9]+$/.test(frac)) nsec = Number(frac.padEnd(9, "0"));
  }
  return { sec, nsec, pax: s };
}
