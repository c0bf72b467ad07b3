/**
 * Seeded random composefs trees for the EROFS/dumpfile tests and benches: names of arbitrary bytes,
 * file sizes around the 64-byte, 2 KiB and 4 KiB edges, external files around chunk edges, long
 * symlinks, hardlinks, devices, whiteouts, xattrs of every namespace, multi-block directories.
 *
 * @module
 */
import {
  type ByteString,
  Directory,
  Leaf,
  type LeafContent,
  newStat,
  type Node,
  type Stat,
  type Xattrs,
} from "../../lib/tree/mod.ts";

/** A small deterministic PRNG (mulberry32). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** Knobs of {@link randomTree}. */
export interface RandomTreeOptions {
  /** Roughly how many entries (default 200). */
  entries?: number;
  /** Format the tree is meant for: V2 keeps inline files ≤ 512 bytes and symlinks ≤ 1024 (composefs-rs limits). */
  v2?: boolean;
  /** Largest inline file (default 5000). */
  maxInline?: number;
  /** Printable ASCII names only (for tests that look at the tree through paths). */
  asciiNames?: boolean;
}

const INLINE_SIZES = [0, 1, 2, 63, 64, 65, 100, 511, 512, 2047, 2048, 2049, 4095, 4096, 4097, 5000];
const EXTERNAL_SIZES = [1, 64, 65, 4095, 4096, 4097, 65536, 1048575, 1048576, 1048577, 2 ** 32, 2 ** 32 + 1, 2 ** 45];
const SYMLINK_SIZES = [1, 10, 200, 1024, 2000, 3900, 4000, 4064, 4095];
const XATTR_NAMES = [
  "user.a",
  "user.mime_type",
  "trusted.test",
  "trusted.overlay.custom",
  "trusted.overlay.metacopy",
  "security.selinux",
  "security.capability",
  "system.posix_acl_access",
  "system.posix_acl_default",
  "lustre.lov",
  "other.namespace",
];
const MTIMES: Array<[number, number]> = [[0, 0], [1000, 0], [1704164645, 123456789], [981173106, 5]];

function randomName(rng: Rng, ascii: boolean): ByteString {
  const len = rng.pick([1, 2, 3, 8, 20, 100, 255]);
  let s = "";
  for (let i = 0; i < len; i++) {
    let c = rng.next() < 0.7 ? 0x61 + rng.int(26) : ascii ? 0x21 + rng.int(94) : 1 + rng.int(255);
    if (c === 0x2f) c = 0x5f;
    s += String.fromCharCode(c);
  }
  return s === "." || s === ".." ? "x" + s : s;
}

function randomStat(rng: Rng, perm: number): Stat {
  const xattrs: Xattrs = new Map();
  const n = rng.pick([0, 0, 0, 1, 2, 4]);
  for (let i = 0; i < n; i++) {
    const name = rng.pick(XATTR_NAMES);
    xattrs.set(name, rng.next() < 0.5 ? new TextEncoder().encode("shared") : rng.bytes(rng.pick([0, 1, 5, 40])));
  }
  const [mtimeSec, mtimeNsec] = rng.next() < 0.8 ? MTIMES[2] : rng.pick(MTIMES);
  return newStat({
    mode: perm,
    uid: rng.next() < 0.9 ? 0 : rng.pick([1000, 65535, 65536, 100000]),
    gid: rng.next() < 0.9 ? 0 : rng.pick([1000, 65536]),
    mtimeSec,
    mtimeNsec,
    xattrs,
  });
}

function randomLeaf(rng: Rng, opts: RandomTreeOptions): Leaf {
  const maxInline = opts.v2 ? 512 : opts.maxInline ?? 5000;
  const r = rng.int(100);
  let content: LeafContent;
  if (r < 35) {
    const size = Math.min(rng.pick(INLINE_SIZES), maxInline);
    content = { kind: "inline", data: rng.bytes(size) };
  } else if (r < 55) {
    const alg = rng.next() < 0.8 ? "sha256" : "sha512";
    const id = { alg, digest: rng.bytes(alg === "sha256" ? 32 : 64) } as const;
    const size = rng.pick(EXTERNAL_SIZES);
    content = rng.next() < 0.85 ? { kind: "external", id, size } : { kind: "external-noverity", id, size };
  } else if (r < 58) {
    content = { kind: "sparse", size: rng.pick(EXTERNAL_SIZES) };
  } else if (r < 75) {
    const len = opts.v2 ? Math.min(rng.pick(SYMLINK_SIZES), 1024) : rng.pick(SYMLINK_SIZES);
    let t = "";
    for (let i = 0; i < len; i++) t += String.fromCharCode(1 + rng.int(255));
    content = { kind: "symlink", target: t };
  } else if (r < 82) {
    content = { kind: rng.next() < 0.5 ? "chardev" : "blockdev", rdev: rng.pick([1, 259, 1792, 0xffffffff]) };
  } else if (r < 88) {
    content = { kind: "chardev", rdev: 0 };
  } else if (r < 94) {
    content = { kind: "fifo" };
  } else {
    content = { kind: "socket" };
  }
  const perm = rng.pick([0o644, 0o755, 0o600, 0o4755, 0o2755, 0o1777, 0]);
  return new Leaf(randomStat(rng, perm), content);
}

/**
 * A random tree. It avoids only what a composefs image cannot carry back (documented lossy cases):
 * `user.overlay.*` and the `trusted.overlay.{whiteout,whiteouts,opaque}` names, whiteouts named
 * like root stubs, and empty external files.
 */
export function randomTree(seed: number, opts: RandomTreeOptions = {}): Directory {
  const rng = new Rng(seed);
  const root = new Directory(randomStat(rng, 0o755));
  const dirs: Directory[] = [root];
  const leaves: Leaf[] = [];
  const total = opts.entries ?? 200;
  for (let i = 0; i < total; i++) {
    const parent = rng.next() < 0.05 ? dirs[0] : rng.pick(dirs);
    let name = randomName(rng, opts.asciiNames ?? false);
    if (parent === root && /^[0-9a-f]{2}$/.test(name)) name += "_";
    let node: Node;
    const r = rng.int(100);
    if (r < 15) {
      node = new Directory(randomStat(rng, rng.pick([0o755, 0o700, 0o1777])));
      dirs.push(node);
    } else if (r < 22 && leaves.length > 0) {
      const target = rng.pick(leaves);
      if (target.isWhiteout) continue;
      node = target;
    } else {
      const leaf = randomLeaf(rng, opts);
      leaves.push(leaf);
      node = leaf;
    }
    if (parent.get(name) !== undefined) continue;
    parent.set(name, node);
  }
  // A directory that needs several blocks.
  const big = new Directory(randomStat(rng, 0o755));
  root.set("big-directory", big);
  for (let i = 0; i < 300 + rng.int(200); i++) {
    big.set(
      `entry-${i}-${"z".repeat(rng.int(30))}`,
      new Leaf(randomStat(rng, 0o644), { kind: "inline", data: new Uint8Array(0) }),
    );
  }
  return root;
}
