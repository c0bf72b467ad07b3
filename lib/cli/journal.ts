/**
 * systemd journal native protocol: when stderr is connected to the journal (`$JOURNAL_STREAM`
 * names stderr's device and inode), log records are sent as datagrams of `KEY=value` fields to
 * `/run/systemd/journal/socket`, so structured fields (`F_MESSAGE_ID`, `F_BOOTC_OPERATION`, …)
 * stay queryable with `journalctl`.
 *
 * @module
 */
import { sendtoUnix, unixDatagramSocket } from "../../ffi/libc.ts";
import { concat } from "../bytes/mod.ts";

/** The socket journald listens on for native-protocol records. */
export const JOURNAL_SOCKET = "/run/systemd/journal/socket";

const enc = new TextEncoder();

/**
 * Field name as bootc's tracing-journald layer stores it: upper case, `.` → `_`, prefixed `F_`
 * (bootc-layout.md §6), so `message_id` becomes `F_MESSAGE_ID`.
 */
export function journalFieldName(key: string): string {
  return "F_" + key.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
}

/**
 * Encodes one record in the native protocol. Values containing a newline use the binary form:
 * name, newline, 64-bit little-endian length, value, newline.
 */
export function encodeJournalRecord(fields: [string, string][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of fields) {
    const value = enc.encode(v);
    if (!v.includes("\n")) {
      parts.push(enc.encode(`${k}=`), value, enc.encode("\n"));
      continue;
    }
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(value.length), true);
    parts.push(enc.encode(`${k}\n`), len, value, enc.encode("\n"));
  }
  return concat(parts);
}

/** Decodes a native-protocol record (the inverse of {@link encodeJournalRecord}); for tests and tools. */
export function decodeJournalRecord(data: Uint8Array): Map<string, string> {
  const dec = new TextDecoder();
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    let nl = data.indexOf(0x0a, off);
    if (nl < 0) nl = data.length;
    const line = data.subarray(off, nl);
    const eq = line.indexOf(0x3d);
    if (eq >= 0) {
      out.set(dec.decode(line.subarray(0, eq)), dec.decode(line.subarray(eq + 1)));
      off = nl + 1;
      continue;
    }
    const name = dec.decode(line);
    const len = Number(new DataView(data.buffer, data.byteOffset + nl + 1, 8).getBigUint64(0, true));
    out.set(name, dec.decode(data.subarray(nl + 9, nl + 9 + len)));
    off = nl + 9 + len + 1;
  }
  return out;
}

/**
 * True when `journalStream` (the `$JOURNAL_STREAM` value, `DEV:INO`) names the file that
 * `stderrPath` (normally `/proc/self/fd/2`) refers to.
 */
export function stderrIsJournal(journalStream: string | undefined, stderrPath = "/proc/self/fd/2"): boolean {
  const m = journalStream?.match(/^(\d+):(\d+)$/);
  if (!m) return false;
  try {
    const st = Deno.statSync(stderrPath);
    return st.dev === Number(m[1]) && st.ino === Number(m[2]);
  } catch {
    return false;
  }
}

/** A connection to the journal socket; sending never throws (logging must not fail a command). */
export class JournalSender {
  #fd: number;
  #path: string;

  constructor(path = JOURNAL_SOCKET) {
    this.#fd = unixDatagramSocket();
    this.#path = path;
  }

  /** Sends one record; returns false if the journal did not take it. */
  send(fields: [string, string][]): boolean {
    try {
      sendtoUnix(this.#fd, encodeJournalRecord(fields), this.#path);
      return true;
    } catch {
      return false;
    }
  }
}
