/**
 * Object stores handed to a helper (lib/oci/store_helper.ts), both ends on this thread over a
 * MessageChannel: a layer imported with a helper — from the start, from half-way, for files too
 * large for a batch — gives the same stream, stats and objects as one without; a helper that fails
 * fails the import, which registers nothing.
 */
import assert from "node:assert/strict";
import { importLayer } from "../../lib/oci/layer_import.ts";
import { parseDigest } from "../../lib/oci/digest.ts";
import { HelperSlot, serveStores } from "../../lib/oci/store_helper.ts";
import { buildTar } from "../../lib/tar/mod.ts";
import { gen, sha256, tempRepository } from "../helpers/oci.ts";

/** 300 files of 65 bytes to 20 KB (more than one batch's worth of files), one of 3 MiB, small ones. */
function layerTar(): Uint8Array {
  return buildTar([
    { entry: { path: "d", kind: "dir" } },
    ...Array.from({ length: 300 }, (_, i) => ({
      entry: { path: `d/f${i}`, kind: "file" as const },
      data: gen(65 + (i * 677) % 20_000, `f${i % 290}`), // a few duplicates
    })),
    { entry: { path: "big", kind: "file" }, data: gen(3 << 20, "big") },
    { entry: { path: "tiny", kind: "file" }, data: gen(10, "tiny") },
  ]);
}

/** `tar` in chunks that yield to the event loop (as file reads do), calling `at(n)` before chunk n. */
async function* chunks(tar: Uint8Array, at?: (n: number) => void): AsyncGenerator<Uint8Array> {
  for (let o = 0, n = 0; o < tar.length; o += 64 << 10, n++) {
    at?.(n);
    await new Promise((r) => setTimeout(r, 0));
    yield tar.subarray(o, o + (64 << 10));
  }
}

/** A helper serving `repoPath` on this thread, lent to a new slot; `served` ends with it. */
function lentHelper(repoPath: string): { slot: HelperSlot; served: Promise<void>; lend: () => void } {
  const slot = new HelperSlot();
  const { port1, port2 } = new MessageChannel();
  let served: Promise<void> = Promise.resolve();
  return {
    slot,
    get served() {
      return served;
    },
    lend() {
      served = serveStores(repoPath, port2);
      assert.ok(slot.attach(port1));
    },
  };
}

Deno.test("store helper: the same stream, stats and objects with a helper from the start or from half-way", async () => {
  const tar = layerTar();
  const diffId = parseDigest(sha256(tar));
  using ref = tempRepository("sha512");
  const alone = await importLayer(ref.repo, diffId, chunks(tar));
  const refObjects = ref.repo.openStream(`oci-layer-${sha256(tar)}`).objectRefs;
  for (const from of [0, 40]) {
    using tmp = tempRepository("sha512");
    const h = lentHelper(tmp.repo.path);
    const r = await importLayer(tmp.repo, diffId, chunks(tar, (n) => n === from && h.lend()), { helper: h.slot });
    await h.served;
    assert.equal(r.id, alone.id, `helper from chunk ${from}`);
    assert.deepEqual(r.stats, alone.stats);
    for (const id of refObjects) assert.ok(tmp.repo.hasObject(id), `object ${id} named`);
  }
});

Deno.test("store helper: the helper stores files, not the importing thread alone", async () => {
  const tar = layerTar();
  using tmp = tempRepository("sha512");
  const { port1, port2 } = new MessageChannel();
  let stored = 0;
  const served = serveStores(tmp.repo.path, port2);
  // A relay between the importing end and the helper, counting the helper's answers.
  const slot = new HelperSlot();
  const counting = new MessageChannel();
  counting.port2.onmessage = (ev) => port1.postMessage(ev.data, ev.data.buffer ? [ev.data.buffer] : []);
  port1.onmessage = (ev) => {
    if (ev.data.type === "stored") stored += ev.data.ids.length;
    counting.port2.postMessage(ev.data, ev.data.buffer ? [ev.data.buffer] : []);
  };
  slot.attach(counting.port1);
  await importLayer(tmp.repo, parseDigest(sha256(tar)), chunks(tar), { helper: slot });
  await served;
  port1.close();
  counting.port2.close();
  assert.ok(stored > 0, "the helper stored no file");
});

Deno.test("store helper: a failing helper fails the import, which registers nothing; late helpers are let go", async () => {
  const tar = layerTar();
  using tmp = tempRepository("sha512");
  const slot = new HelperSlot();
  const { port1, port2 } = new MessageChannel();
  port2.onmessage = () => port2.postMessage({ type: "error", message: "No space left on device (os error 28)" });
  slot.attach(port1);
  await assert.rejects(
    importLayer(tmp.repo, parseDigest(sha256(tar)), chunks(tar), { helper: slot }),
    /storing objects on another thread: No space left on device/,
  );
  port2.close();
  assert.equal(tmp.repo.hasStream(`oci-layer-${sha256(tar)}`), null);

  // A helper whose thread is gone never answers: the import fails instead of waiting for it.
  const silent = new HelperSlot();
  const gone = new MessageChannel();
  silent.attach(gone.port1);
  const fail = (n: number) => n === 10 && silent.stores!.fail(new Error("store helper worker failed: boom"));
  await assert.rejects(
    importLayer(tmp.repo, parseDigest(sha256(tar)), chunks(tar, fail), { helper: silent }),
    /store helper worker failed: boom/,
  );
  gone.port2.close();
  assert.equal(tmp.repo.hasStream(`oci-layer-${sha256(tar)}`), null);

  // A helper lent once the import has ended is told to flush and stops.
  const late = lentHelper(tmp.repo.path);
  late.slot.close();
  const { port1: p1, port2: p2 } = new MessageChannel();
  const served = serveStores(tmp.repo.path, p2);
  assert.equal(late.slot.attach(p1), false);
  await served;
});
