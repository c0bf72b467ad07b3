/**
 * What an update would download (`bootc upgrade --check`): the layers of the new manifest against
 * those of the current one, compared by digest, and printed as ostree-ext prints its manifest
 * diff, sizes in GLib's decimal units.
 *
 * @module
 */

/** A layer as a manifest lists it. */
export interface LayerSize {
  digest: string;
  size: number;
}

/** Layer counts and byte totals of an update. */
export interface ManifestDiff {
  /** Layers of the new manifest, and their bytes. */
  total: number;
  totalSize: number;
  /** Layers of the current manifest that the new one does not have. */
  removed: number;
  removedSize: number;
  /** Layers of the new manifest that the current one does not have: what the update fetches. */
  added: number;
  addedSize: number;
}

/** The diff from layers `from` (current) to layers `to` (new). */
export function manifestDiff(from: readonly LayerSize[], to: readonly LayerSize[]): ManifestDiff {
  const sum = (ls: readonly LayerSize[]) => ls.reduce((n, l) => n + l.size, 0);
  const fromDigests = new Set(from.map((l) => l.digest));
  const toDigests = new Set(to.map((l) => l.digest));
  const removed = from.filter((l) => !toDigests.has(l.digest));
  const added = to.filter((l) => !fromDigests.has(l.digest));
  return {
    total: to.length,
    totalSize: sum(to),
    removed: removed.length,
    removedSize: sum(removed),
    added: added.length,
    addedSize: sum(added),
  };
}

const UNITS = ["kB", "MB", "GB", "TB", "PB", "EB"];

/**
 * `n` bytes as GLib's `g_format_size` writes them: `1 byte`, `999 bytes`, then one decimal in
 * the largest power of 1000 not above `n` (`1.0 kB`, `885.4 MB`; 999 999 bytes is `1000.0 kB`).
 */
export function glibSize(n: number): string {
  if (n < 1000) return n === 1 ? "1 byte" : `${n} bytes`;
  let unit = 0;
  while (unit < UNITS.length - 1 && n >= 1000 ** (unit + 2)) unit++;
  return `${(n / 1000 ** (unit + 1)).toFixed(1)} ${UNITS[unit]}`;
}

/** The three lines ostree-ext prints for `d`. */
export function formatManifestDiff(d: ManifestDiff): string[] {
  const n = (x: number) => String(x).padEnd(4);
  return [
    `Total new layers: ${n(d.total)}  Size: ${glibSize(d.totalSize)}`,
    `Removed layers:   ${n(d.removed)}  Size: ${glibSize(d.removedSize)}`,
    `Added layers:     ${n(d.added)}  Size: ${glibSize(d.addedSize)}`,
  ];
}
