import assert from "node:assert/strict";
import {
  decodeJournalRecord,
  encodeJournalRecord,
  journalFieldName,
  JournalSender,
  stderrIsJournal,
} from "../../lib/cli/journal.ts";
import { createLogger, journalSink } from "../../lib/cli/log.ts";
import { bootcfs } from "../helpers/cli.ts";
import { bootcfsUnderJournal, fakeJournal } from "../helpers/journal.ts";

Deno.test("journal: field names follow bootc's tracing-journald mapping", () => {
  assert.equal(journalFieldName("message_id"), "F_MESSAGE_ID");
  assert.equal(journalFieldName("bootc.operation"), "F_BOOTC_OPERATION");
});

Deno.test("journal: the native protocol encodes multi-line values in the binary form", () => {
  const bytes = encodeJournalRecord([["MESSAGE", "a\nb"], ["PRIORITY", "5"]]);
  const expected = new Uint8Array([
    ...new TextEncoder().encode("MESSAGE\n"),
    3,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ...new TextEncoder().encode("a\nb\nPRIORITY=5\n"),
  ]);
  assert.deepEqual(bytes, expected);
  assert.deepEqual([...decodeJournalRecord(bytes)], [["MESSAGE", "a\nb"], ["PRIORITY", "5"]]);
});

Deno.test("journal: records with structured fields reach a datagram socket", () => {
  const dir = Deno.makeTempDirSync();
  const j = fakeJournal(dir);
  try {
    const log = createLogger(journalSink(new JournalSender(j.path)), "info");
    log.info("Pulling composefs image x", {
      message_id: "4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8",
      "bootc.operation": "pull",
      "bootc.allow_missing_fsverity": true,
      skipped: undefined,
    });
    log.debug("not at info level");
    const recs = j.drain();
    assert.equal(recs.length, 1);
    assert.deepEqual(recs[0], {
      MESSAGE: "Pulling composefs image x",
      PRIORITY: "5",
      SYSLOG_IDENTIFIER: "bootcfs",
      F_MESSAGE_ID: "4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8",
      F_BOOTC_OPERATION: "pull",
      F_BOOTC_ALLOW_MISSING_FSVERITY: "true",
    });
  } finally {
    j.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("journal: stderr is the journal only when JOURNAL_STREAM names its device and inode", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/f`, "");
    const st = Deno.statSync(`${dir}/f`);
    assert.equal(stderrIsJournal(`${st.dev}:${st.ino}`, `${dir}/f`), true);
    assert.equal(stderrIsJournal(`${st.dev}:${st.ino! + 1}`, `${dir}/f`), false);
    assert.equal(stderrIsJournal(undefined, `${dir}/f`), false);
    assert.equal(stderrIsJournal("garbage", `${dir}/f`), false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("journal: a bootcfs process whose stderr is the journal logs there, not on stderr", async () => {
  const dir = Deno.makeTempDirSync();
  const j = fakeJournal(dir);
  try {
    const r = await bootcfsUnderJournal(j, dir, ["-v", "digest", `${dir}/missing`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "");
    const recs = j.drain();
    assert.equal(recs.length, 2);
    assert.equal(recs[0].PRIORITY, "6");
    assert.equal(recs[0].F_BOOTCFS_COMMAND, "bootcfs digest");
    assert.equal(recs[1].PRIORITY, "3");
    assert.match(recs[1].MESSAGE, /^computing the fs-verity digest of .*missing: No such file or directory/);
  } finally {
    j.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("journal: without JOURNAL_STREAM errors are one line on stderr", async () => {
  const r = await bootcfs(["digest", "/nonexistent/file"]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^error: computing the fs-verity digest of \/nonexistent\/file: No such file or directory[^\n]*\n$/,
  );
});
