/**
 * A datagram socket standing in for journald (`$BOOTCFS_JOURNAL_SOCKET`), and a way to run bootcfs
 * with stderr recognised as the journal (`$JOURNAL_STREAM` naming its stderr file).
 */
import { bindUnix, close, recvNonBlocking, unixDatagramSocket } from "../../ffi/libc.ts";
import { decodeJournalRecord } from "../../lib/cli/journal.ts";
import { REPO_ROOT } from "./paths.ts";

/** A bound fake journal socket in `dir`. */
export interface FakeJournal {
  readonly path: string;
  /** Every record received so far, as field → value. */
  drain(): Record<string, string>[];
  close(): void;
}

/** Binds `<dir>/journal.sock`. */
export function fakeJournal(dir: string): FakeJournal {
  const path = `${dir}/journal.sock`;
  const fd = unixDatagramSocket();
  bindUnix(fd, path);
  return {
    path,
    drain() {
      const out = [];
      const buf = new Uint8Array(1 << 16);
      for (let n; (n = recvNonBlocking(fd, buf)) !== null;) {
        out.push(Object.fromEntries(decodeJournalRecord(buf.slice(0, n))));
      }
      return out;
    },
    close: () => close(fd),
  };
}

/** Runs `bootcfs ...args` with stderr going to a file that `$JOURNAL_STREAM` names, logging to `journal`. */
export async function bootcfsUnderJournal(
  journal: FakeJournal,
  dir: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const errPath = `${dir}/stderr-${crypto.randomUUID()}`;
  Deno.writeTextFileSync(errPath, "");
  const st = Deno.statSync(errPath);
  const r = await new Deno.Command("sh", {
    args: [
      "-c",
      `exec "$@" 2>>${errPath}`,
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${REPO_ROOT}/main.ts`,
      ...args,
    ],
    env: { JOURNAL_STREAM: `${st.dev}:${st.ino}`, BOOTCFS_JOURNAL_SOCKET: journal.path, NO_COLOR: "1" },
    stdout: "piped",
  }).output();
  return { code: r.code, stdout: new TextDecoder().decode(r.stdout), stderr: Deno.readTextFileSync(errPath) };
}
