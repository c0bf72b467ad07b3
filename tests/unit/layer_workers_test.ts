/**
 * Layer imports on worker threads (lib/oci/layer_workers.ts): the same stream as an import on the
 * main thread, concurrent imports, and failures — of the worker's own work and of the blob being
 * read on the main thread — that register nothing and leave the pool usable. Workers only, but for
 * the last test, which has the calling thread take the first import.
 */
import assert from "node:assert/strict";
import { importLayer } from "../../lib/oci/layer_import.ts";
import { type LayerJob, LayerWorkers } from "../../lib/oci/layer_workers.ts";
import type { LayerImportResult } from "../../lib/oci/layer_import.ts";
import { parseDigest } from "../../lib/oci/digest.ts";
import { buildTar } from "../../lib/tar/mod.ts";
import { compress, gen, sha256, tempRepository } from "../helpers/oci.ts";

const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

function layer(seed: string, files = 20, size = (i: number) => i * 3000 + 10): { tar: Uint8Array; gz: Uint8Array } {
  const tar = buildTar([
    { entry: { path: "d", kind: "dir" } },
    ...Array.from({ length: files }, (_, i) => ({
      entry: { path: `d/${seed}-${i}`, kind: "file" as const },
      data: gen(size(i), `${seed}${i}`),
    })),
  ]);
  return { tar, gz: compress(tar, "gzip") };
}

async function* chunks(data: Uint8Array, size = 10_000, failAt = Infinity): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < data.length; o += size) {
    if (o >= failAt) throw new Error("blob sha256:… does not match its digest");
    yield data.subarray(o, o + size);
  }
}

function job(repoPath: string, tar: Uint8Array, diffId = sha256(tar)): LayerJob {
  return { kind: "blob", repoPath, diffId: parseDigest(diffId), mediaType: GZIP, verifyDiffId: true };
}

Deno.test("layer workers: same stream verity and stats as an import on the main thread", async () => {
  using main = tempRepository("sha512");
  using work = tempRepository("sha512");
  const { tar, gz } = layer("same");
  const here = await importLayer(main.repo, parseDigest(sha256(tar)), chunks(tar));
  const workers = new LayerWorkers({ local: false });
  try {
    const there = await workers.import(job(work.repo.path, tar), chunks(gz));
    assert.deepEqual(there.id, here.id);
    assert.deepEqual(there.stats, here.stats);
    assert.deepEqual(work.repo.hasStream(`oci-layer-${sha256(tar)}`), here.id);
    for (const id of main.repo.openStream(`oci-layer-${sha256(tar)}`).objectRefs) {
      assert.ok(work.repo.hasObject(id), `object ${id} named by the worker`);
    }
  } finally {
    workers.terminate();
  }
});

Deno.test("layer workers: concurrent imports each land; a present layer is not read again", async () => {
  using tmp = tempRepository("sha256");
  const layers = ["a", "b", "c"].map((s) => layer(s, 40));
  const workers = new LayerWorkers({ local: false });
  try {
    const results = await Promise.all(layers.map((l) => workers.import(job(tmp.repo.path, l.tar), chunks(l.gz))));
    for (const [i, l] of layers.entries()) {
      assert.deepEqual(tmp.repo.hasStream(`oci-layer-${sha256(l.tar)}`), results[i].id);
      assert.deepEqual(results[i].alreadyPresent, false);
    }
    // deno-lint-ignore require-yield
    const poisoned = async function* (): AsyncGenerator<Uint8Array> {
      throw new Error("must not be read");
    };
    const again = await workers.import(job(tmp.repo.path, layers[0].tar), poisoned());
    assert.deepEqual(again.alreadyPresent, true);
  } finally {
    workers.terminate();
  }
});

Deno.test("layer workers: failures register nothing and the pool goes on", async () => {
  using tmp = tempRepository("sha512");
  const { tar, gz } = layer("fail", 60);
  const workers = new LayerWorkers({ local: false });
  try {
    // The blob fails on the main thread half-way: that error, not the worker's, is thrown.
    await assert.rejects(
      workers.import(job(tmp.repo.path, tar), chunks(gz, 4096, gz.length / 2)),
      /does not match its digest/,
    );
    // The worker's own failures come back with their message.
    await assert.rejects(
      workers.import(job(tmp.repo.path, tar, sha256(gen(1, "other"))), chunks(gz)),
      /diff_id mismatch/,
    );
    await assert.rejects(
      workers.import(job(tmp.repo.path, tar), chunks(gz.subarray(0, gz.length - 100))),
      /gzip data is truncated/,
    );
    assert.deepEqual(tmp.repo.hasStream(`oci-layer-${sha256(tar)}`), null);
    const ok = await workers.import(job(tmp.repo.path, tar), chunks(gz));
    assert.deepEqual(tmp.repo.hasStream(`oci-layer-${sha256(tar)}`), ok.id);
  } finally {
    workers.terminate();
  }
});

Deno.test("layer workers: the calling thread takes one import, workers the others; failures alike", async () => {
  using tmp = tempRepository("sha512");
  const layers = ["x", "y", "z"].map((s) => layer(s, 30));
  const workers = new LayerWorkers();
  try {
    const results = await Promise.all(layers.map((l) => workers.import(job(tmp.repo.path, l.tar), chunks(l.gz))));
    for (const [i, l] of layers.entries()) {
      assert.deepEqual(tmp.repo.hasStream(`oci-layer-${sha256(l.tar)}`), results[i].id);
    }
    const bad = layer("bad", 30);
    // One local, one in a worker: both drop what they stored.
    const failing = [0, 1].map(() =>
      workers.import(job(tmp.repo.path, bad.tar), chunks(bad.gz, 4096, bad.gz.length / 2))
    );
    // Both awaited at once: the one that fails first must not wait unhandled for the other.
    await Promise.all(failing.map((f) => assert.rejects(f, /does not match its digest/)));
    assert.deepEqual(tmp.repo.hasStream(`oci-layer-${sha256(bad.tar)}`), null);
  } finally {
    workers.terminate();
  }
});

/** `data` in chunks that each wait a little, so that an import is still running when a helper is lent. */
async function* slowly(data: Uint8Array): AsyncGenerator<Uint8Array> {
  for await (const c of chunks(data, 4096)) {
    await new Promise((r) => setTimeout(r, 2));
    yield c;
  }
}

Deno.test("layer workers: a thread with no layer left is lent to an import still running; same streams", async () => {
  using ref = tempRepository("sha512");
  const big = layer("lent", 600, (i) => 100 + i * 7);
  const small = layer("done", 5);
  const alone = await importLayer(ref.repo, parseDigest(sha256(big.tar)), chunks(big.tar));
  for (const bigOn of ["calling thread", "worker"] as const) {
    using tmp = tempRepository("sha512");
    const workers = new LayerWorkers();
    try {
      // The first import runs on the calling thread, the second in a worker.
      const [first, second] = bigOn === "calling thread" ? [big, small] : [small, big];
      const a = workers.import(job(tmp.repo.path, first.tar), slowly(first.gz));
      const b = workers.import(job(tmp.repo.path, second.tar), slowly(second.gz));
      const [bigImport, smallImport] = bigOn === "calling thread" ? [a, b] : [b, a];
      await smallImport;
      assert.equal(workers.lend(), bigOn === "calling thread" ? "worker" : "calling thread");
      assert.equal(workers.lend(), null, "one helper per import");
      assert.equal((await bigImport).id, alone.id);
      for (const id of ref.repo.openStream(`oci-layer-${sha256(big.tar)}`).objectRefs) {
        assert.ok(tmp.repo.hasObject(id), `object ${id} named`);
      }
      // The lent worker is back in the pool.
      const again = layer("again", 10);
      await workers.import(job(tmp.repo.path, again.tar), chunks(again.gz));
    } finally {
      workers.terminate();
    }
  }
});

Deno.test("layer workers: a thread takes the next import while the one before waits for the disk", async () => {
  for (const local of [false, true]) {
    using tmp = tempRepository("sha256");
    const [a, b] = ["early-a", "early-b"].map((s) => layer(s, 30));
    const workers = new LayerWorkers({ local });
    try {
      const events: string[] = [];
      let second: Promise<LayerImportResult> | null = null;
      const first = workers.import(job(tmp.repo.path, a.tar), chunks(a.gz), undefined, () => {
        events.push("a stored");
        second = workers.import(job(tmp.repo.path, b.tar), chunks(b.gz)).then((r) => (events.push("b done"), r));
      }).then((r) => (events.push("a done"), r));
      const ra = await first;
      const rb = await second!;
      assert.equal(events[0], "a stored", events.join(", "));
      assert.ok(events.includes("a done") && events.includes("b done"));
      // The second import ran on the thread of the first: no (further) worker was started for it.
      assert.equal(workers.threads, local ? 0 : 1, `local: ${local}`);
      assert.deepEqual(tmp.repo.hasStream(`oci-layer-${sha256(a.tar)}`), ra.id);
      assert.deepEqual(tmp.repo.hasStream(`oci-layer-${sha256(b.tar)}`), rb.id);
    } finally {
      workers.terminate();
    }
  }
});
