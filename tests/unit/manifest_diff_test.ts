import assert from "node:assert/strict";
import { formatManifestDiff, glibSize, manifestDiff } from "../../lib/oci/manifest_diff.ts";

const l = (n: number, size: number) => ({ digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size });

Deno.test("manifestDiff: layers compared by digest; totals are the new manifest's", () => {
  const base = l(1, 300_000_000);
  const d = manifestDiff([base, l(2, 5_000), l(3, 7)], [base, l(4, 885_400_000), l(2, 5_000)]);
  assert.deepEqual(d, {
    total: 3,
    totalSize: 1_185_405_000,
    removed: 1,
    removedSize: 7,
    added: 1,
    addedSize: 885_400_000,
  });
  assert.deepEqual(formatManifestDiff(d), [
    "Total new layers: 3     Size: 1.2 GB",
    "Removed layers:   1     Size: 7 bytes",
    "Added layers:     1     Size: 885.4 MB",
  ]);
  assert.deepEqual(manifestDiff([base], [base]), {
    total: 1,
    totalSize: 300_000_000,
    removed: 0,
    removedSize: 0,
    added: 0,
    addedSize: 0,
  });
});

Deno.test("glibSize: GLib's g_format_size", () => {
  assert.equal(glibSize(0), "0 bytes");
  assert.equal(glibSize(1), "1 byte");
  assert.equal(glibSize(999), "999 bytes");
  assert.equal(glibSize(1000), "1.0 kB");
  assert.equal(glibSize(1_050), "1.1 kB");
  assert.equal(glibSize(999_999), "1000.0 kB");
  assert.equal(glibSize(1_000_000), "1.0 MB");
  assert.equal(glibSize(5_300_000_000), "5.3 GB");
  assert.equal(glibSize(2 * 1000 ** 7), "2000.0 EB");
});
