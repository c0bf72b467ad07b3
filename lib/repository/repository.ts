/**
 * A composefs repository directory shared with composefs-rs v0.9.0 (composefs-formats.md §1,
 * oci-and-boot.md §1): `meta.json`, content-addressed objects, stream and image links, refs and
 * the repository lock.
 *
 * Durability: objects are written without a per-object fsync (as composefs-rs) but are named
 * only after a syncfs that covers their data: by {@link Repository.sync} (syncfs, name the queued
 * objects, syncfs), which runs before any `streams/` or `images/` link (or ref) is made, or, for a
 * full queue, by a background flush (syncfs on another thread, then names). A crash therefore never
 * leaves a named object with other content or a link to a missing object; it can only lose data
 * nothing refers to yet.
 *
 * @module
 */
import { removeIfExists } from "../runtime/files.ts";
import {
  close,
  type DirRef,
  ficlone,
  flock,
  fsync,
  linkFd,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
  lstat,
  mkdir,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_RDONLY,
  O_RDWR,
  open,
  openDir,
  openTmpfile,
  pread,
  read,
  RENAME_NOREPLACE,
  renameat2,
  syncfs,
  syncfsAsync,
  SyscallError,
  tryCopyFileRange,
  unlink,
  unlinkAll,
  writeAll,
} from "../../ffi/libc.ts";
import { concat } from "../bytes/mod.ts";
import { fsverityDigest, FsVerityHasher, type HashAlg } from "../fsverity/digest.ts";
import { enableFd, hashFd, measureFd } from "../fsverity/kernel.ts";
import { SplitStream, SplitStreamWriter } from "../splitstream/mod.ts";
import {
  type Access,
  checkAccess,
  type ErofsFormats,
  newMeta,
  parseMeta,
  type RepoMeta,
  sameMeta,
  serializeMeta,
} from "./meta.ts";
import {
  checkEntryName,
  checkRefName,
  type LinkKind,
  parseObjectLinkTarget,
  parseRefTarget,
  relativeTarget,
} from "./names.ts";
import { type ObjectId, objectIdFromBytes, objectSubpath } from "./objectid.ts";

/** How an object came to be in the repository. */
export type StoreMethod = "copied" | "reflinked" | "hardlinked" | "present";

/** Content written in order, chunk by chunk, through `write` (a chunk may be reused once `write` returns). */
export type Producer = (write: (chunk: Uint8Array) => void) => void;

/** Result of storing an object. */
export interface Stored {
  id: ObjectId;
  method: StoreMethod;
  size: number;
}

/** Options of {@link Repository.open}. */
export interface OpenOptions {
  /** Open for reading only (no writes, no exclusive lock). */
  readOnly?: boolean;
  /** Receives notes a user should see in verbose output (insecure mode, fallbacks). */
  log?: (message: string) => void;
}

/** Options of {@link Repository.init}. */
export interface InitOptions extends OpenOptions {
  alg: HashAlg;
  formats: ErofsFormats;
  /** Create without fs-verity on `meta.json` (required on filesystems without fs-verity). */
  insecure?: boolean;
}

const enc = new TextEncoder();
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const IO_SIZE = 1 << 20;

function randomName(prefix: string): string {
  const r = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(r, (b) => ALNUM[b % ALNUM.length]).join("");
}

function errnoCode(e: unknown): string | undefined {
  if (e instanceof SyscallError) return e.code;
  if (e instanceof Deno.errors.AlreadyExists) return "EEXIST";
  if (e instanceof Deno.errors.NotFound) return "ENOENT";
  return undefined;
}

/**
 * How many stored objects may wait unnamed (each holds an fd): a quarter of the fd limit, at most
 * 4096, so imports sync in large batches without running out of descriptors.
 */
function pendingLimit(): number {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    if (Number.isFinite(soft) && soft > 0) return Math.max(16, Math.min(4096, Math.floor(soft / 4)));
  } catch { /* no /proc: be conservative */ }
  return 256;
}

/**
 * Stored objects named per background flush. Naming costs ~20 µs an object on this thread, so an
 * import that flushed only at the fd bound (4096) spent most of 0.1 s naming at the end of each
 * layer, with the other thread waiting for it.
 */
const FLUSH_BATCH = 1024;

/** A staging file for a new object: anonymous (O_TMPFILE) or, where unsupported, named. */
interface Staging {
  fd: number;
  /** Repository-relative path of a named staging file; null for O_TMPFILE. */
  name: string | null;
}

/** A stored object waiting for {@link Repository.sync} to name it. */
interface Queued extends Staging {
  size: number;
}

/** An open repository. Holds a shared `flock` on the directory until {@link close}. */
export class Repository {
  /** The repository directory. */
  readonly path: string;
  readonly meta: RepoMeta;
  /** True when `meta.json` has no fs-verity: objects may lack verity, digests are computed in userspace. */
  readonly insecure: boolean;
  readonly access: Access;
  #dirFd: number;
  #log: (message: string) => void;
  #noTmpfile = false;
  #noVerity = false;
  /** Stored objects not yet named: named by {@link sync} once their data is on disk. */
  #pending = new Map<ObjectId, Queued>();
  #pendingLimit = pendingLimit();
  /** Queue length at which a background flush starts: small batches leave little to name at the end. */
  #flushAt = Math.min(this.#pendingLimit, FLUSH_BATCH);
  /** The flush of a full queue running in the background ({@link #queueFull}), if any. */
  #flushing: Promise<void> | null = null;
  /** Why a background flush failed, reported by the next store or {@link sync}. */
  #flushError: { e: unknown } | null = null;
  #noCopyRange = false;
  /** `srcDev:dstDev` pairs where reflink (and then hardlink) already failed. */
  #noReflink = new Set<string>();
  #noHardlink = new Set<string>();
  #dev: number | null = null;
  /** `objects/` and the `objects/XX` directories known to exist (made once, not on every store). */
  #dirs = new Set<string>();
  #objects: DirRef | null = null;
  /** Free userspace hashers ({@link #takeHasher}). */
  #hashers: FsVerityHasher[] = [];
  #copyBuf: Uint8Array | null = null;

  private constructor(path: string, dirFd: number, meta: RepoMeta, insecure: boolean, opts: OpenOptions) {
    this.path = path;
    this.#dirFd = dirFd;
    this.meta = meta;
    this.insecure = insecure;
    const access = checkAccess(meta);
    this.access = opts.readOnly && access.mode === "read-write"
      ? { mode: "read-only", reason: "opened read-only" }
      : access;
    this.#log = opts.log ?? (() => {});
  }

  /** The hash algorithm of object IDs. */
  get alg(): HashAlg {
    return this.meta.alg;
  }

  /**
   * Opens an existing repository: shared lock, `meta.json` checks (version, features, algorithm),
   * secure/insecure detection from fs-verity on `meta.json`.
   */
  static open(path: string, opts: OpenOptions = {}): Repository {
    const dirFd = open(path, O_RDONLY | O_DIRECTORY);
    try {
      flock(dirFd, LOCK_SH, path);
      let text: string;
      let metaFd: number;
      try {
        metaFd = open(`${path}/meta.json`, O_RDONLY | O_NOFOLLOW);
      } catch (e) {
        if (errnoCode(e) !== "ENOENT") throw e;
        if (lstat(`${path}/objects`)?.isDirectory) {
          throw new Error(
            `${path} is a repository from composefs-rs before 0.7 (no meta.json); upgrade it with \`cfsctl init\``,
          );
        }
        throw new Error(`${path} is not a composefs repository (no meta.json); create one with \`bootcfs repo init\``);
      }
      let meta: RepoMeta;
      let insecure: boolean;
      try {
        text = new TextDecoder().decode(readAllFd(metaFd, `${path}/meta.json`));
        meta = parseMeta(text);
        const m = measureFd(metaFd, meta.alg, `${path}/meta.json`);
        insecure = m.state !== "enabled";
      } finally {
        close(metaFd);
      }
      const repo = new Repository(path, dirFd, meta, insecure, opts);
      if (insecure) {
        repo.#log(
          `repository ${path} is insecure: meta.json has no fs-verity; object digests are computed in userspace`,
        );
      }
      if (repo.access.mode === "read-only" && !opts.readOnly) {
        repo.#log(`repository ${path} is open read-only: ${repo.access.reason}`);
      }
      return repo;
    } catch (e) {
      close(dirFd);
      throw e;
    }
  }

  /**
   * Creates a repository (or accepts an identical existing one) and opens it. Returns whether
   * `meta.json` was newly written. Secure mode needs fs-verity on the filesystem.
   */
  static init(path: string, opts: InitOptions): { repo: Repository; created: boolean } {
    try {
      Deno.mkdirSync(path, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const meta = newMeta(opts.alg, opts.formats);
    let created = true;
    try {
      writeMetaFile(path, serializeMeta(meta), opts.alg, !opts.insecure);
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw e;
      const existing = parseMeta(Deno.readTextFileSync(`${path}/meta.json`));
      if (!sameMeta(existing, meta)) {
        throw new Error(`${path} is already a repository with a different configuration (see its meta.json)`);
      }
      created = false;
    }
    return { repo: Repository.open(path, opts), created };
  }

  /** Names what is still queued (see {@link sync}), releases the lock and the directory fd. */
  close(): void {
    if (this.#dirFd < 0) return;
    try {
      if (this.#pending.size) this.sync();
    } finally {
      for (const p of this.#pending.values()) if (p.fd >= 0) close(p.fd);
      this.#pending.clear();
      if (this.#objects) close(this.#objects.fd);
      this.#objects = null;
      flock(this.#dirFd, LOCK_UN, this.path);
      close(this.#dirFd);
      this.#dirFd = -1;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Throws unless writes are allowed. */
  checkWritable(): void {
    if (this.access.mode === "read-only") {
      throw new Error(`repository ${this.path} is read-only: ${this.access.reason}`);
    }
  }

  /** Absolute path of an object file. */
  objectPath(id: ObjectId): string {
    return `${this.path}/objects/${objectSubpath(id)}`;
  }

  /** True if the object is stored (named, or queued for the next {@link sync}); content not checked. */
  hasObject(id: ObjectId): boolean {
    return this.#pending.has(id) || (lstat(this.objectPath(id))?.isFile ?? false);
  }

  /**
   * Makes everything stored so far durable and visible: syncfs, then name the queued objects, then
   * syncfs again so those names are on disk before any link that refers to them. Links to streams
   * and images are made only after this.
   */
  sync(): void {
    this.#rethrowFlushError();
    syncfs(this.#dirFd, this.path);
    if (this.#pending.size === 0) return;
    this.#publish();
    syncfs(this.#dirFd, this.path);
  }

  /**
   * Takes the exclusive lock (for GC). Polls every 50 ms for `waitMs` (Infinity = wait as long as it
   * takes), calling `onWait` once; throws a clear error on timeout.
   */
  async lockExclusive(waitMs: number, onWait?: () => void): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (let first = true;; first = false) {
      // A failed non-blocking conversion drops the shared lock: flock conversion is not atomic.
      if (flock(this.#dirFd, LOCK_EX | LOCK_NB, this.path)) return;
      if (Date.now() >= deadline) {
        flock(this.#dirFd, LOCK_SH, this.path);
        throw new Error(
          `repository ${this.path} is in use by another process (bootcfs or cfsctl); garbage collection needs it alone`,
        );
      }
      if (first) onWait?.();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Returns from the exclusive lock to the shared one. */
  unlockExclusive(): void {
    flock(this.#dirFd, LOCK_SH, this.path);
  }

  // ---- objects -------------------------------------------------------------------------------

  /** Makes `dir` (inside the repository) unless it was made or seen before. */
  #ensureDir(dir: string): string {
    if (!this.#dirs.has(dir)) {
      mkdir(dir, 0o755);
      this.#dirs.add(dir);
    }
    return dir;
  }

  #objectsDir(): string {
    return this.#ensureDir(`${this.path}/objects`);
  }

  /** `objects/`, opened once: object paths are resolved from it rather than from `/`. */
  #objectsRef(): DirRef {
    return this.#objects ??= openDir(this.#objectsDir());
  }

  #staging(): Staging {
    const dir = this.#objectsDir();
    if (!this.#noTmpfile) {
      try {
        return { fd: openTmpfile(".", 0o644, this.#objectsRef()), name: null };
      } catch (e) {
        const code = errnoCode(e);
        if (code !== "EOPNOTSUPP" && code !== "EISDIR" && code !== "ENOSYS") throw e;
        this.#noTmpfile = true;
        this.#log(`${dir}: the filesystem has no O_TMPFILE; using named temporary files`);
      }
    }
    for (let attempt = 0;; attempt++) {
      const name = `objects/${randomName(".tmp-object-")}`;
      try {
        return { fd: open(`${this.path}/${name}`, O_CREAT | O_EXCL | O_RDWR, 0o644), name };
      } catch (e) {
        if (errnoCode(e) !== "EEXIST" || attempt >= 15) throw e;
      }
    }
  }

  #discard(s: Staging): void {
    if (s.fd >= 0) close(s.fd);
    if (s.name) Deno.removeSync(`${this.path}/${s.name}`);
  }

  /**
   * The ID of staged content. fs-verity is enabled on a read-only reopen (the writable fd is closed
   * first, as the kernel requires) and its digest used; a secure repository requires that. In an
   * insecure repository on a filesystem without fs-verity the userspace digest (`computed`, or
   * hashed now) is the ID; after the first such object, enabling is not tried again.
   */
  #verify(s: Staging, computed: Uint8Array | null, onData?: (chunk: Uint8Array) => void): ObjectId {
    const what = s.name ? `${this.path}/${s.name}` : `new object in ${this.path}/objects`;
    if (this.insecure && this.#noVerity) return objectIdFromBytes(computed ?? hashFd(s.fd, this.alg, what, onData));
    const ro = open(`/proc/self/fd/${s.fd}`, O_RDONLY);
    close(s.fd);
    s.fd = ro;
    if (!enableFd(ro, this.alg, what)) {
      if (!this.insecure) {
        throw new Error(`${this.path}: the filesystem has no fs-verity, which this secure repository requires`);
      }
      this.#noVerity = true;
      this.#log(`${this.path}: the filesystem has no fs-verity; objects are named by digests computed in userspace`);
      return objectIdFromBytes(computed ?? hashFd(ro, this.alg, what, onData));
    }
    const m = measureFd(ro, this.alg, what);
    if (m.state !== "enabled") throw new Error(`${what}: fs-verity was enabled but cannot be measured`);
    const id = objectIdFromBytes(m.digest);
    if (computed && objectIdFromBytes(computed) !== id) {
      throw new Error(`${what}: the kernel's fs-verity digest differs from the computed one`);
    }
    return id;
  }

  /**
   * True when `id` is queued, or named with the expected size (another size means a damaged file).
   * For the store paths only: it makes `objects/` when missing.
   */
  #present(id: ObjectId, size: number): boolean {
    if (this.#pending.has(id)) return true;
    const st = lstat(objectSubpath(id), this.#objectsRef());
    return st !== null && st.isFile && st.size === size;
  }

  /**
   * Queues a staged object `id` to be named at the next {@link sync}, unless an object of that size
   * is already there (or queued; `checked` when the caller just looked). The staging file stays
   * unnamed (or under its temporary name) until its data is on disk, so a crash never leaves
   * `objects/XX/…` with other content.
   */
  #finalize(s: Staging, id: ObjectId, size: number, checked = false): "present" | "stored" {
    if (!checked && this.#present(id, size)) {
      this.#discard(s);
      return "present";
    }
    if (s.name) {
      close(s.fd); // the temporary name keeps the file
      s.fd = -1;
    }
    this.#pending.set(id, { fd: s.fd, name: s.name, size });
    // The queue owns the file now: error cleanup of the staging must not touch it.
    s.fd = -1;
    s.name = null;
    if (this.#pending.size >= this.#flushAt) this.#queueFull();
    return "stored";
  }

  /**
   * Starts naming the queued objects without waiting: their syncfs runs on another thread while
   * the import goes on, and they are named when it returns. No second syncfs is needed before the
   * next batch: a name only has to be durable before a link refers to it, and every link is made
   * after a {@link sync}, which starts with a syncfs. Only when the queue reaches twice the fd bound
   * while a flush is still running does the caller wait (a synchronous sync).
   */
  #queueFull(): void {
    this.#rethrowFlushError();
    if (this.#flushing) {
      if (this.#pending.size >= 2 * this.#pendingLimit) this.sync();
      return;
    }
    this.#startFlush();
  }

  #startFlush(): Promise<void> {
    const batch = [...this.#pending];
    return this.#flushing = syncfsAsync(this.#dirFd, this.path)
      .then(() => {
        if (this.#dirFd >= 0) this.#publish(batch);
      })
      .catch((e) => void (this.#flushError ??= { e }))
      .finally(() => this.#flushing = null);
  }

  /**
   * Names every object stored so far, waiting for their data to reach the disk on another thread
   * rather than in a synchronous {@link sync}: the thread goes on with other work meanwhile (the
   * calling thread of an import feeds the workers), and the sync that precedes the next link
   * finds little left to write.
   */
  async flush(): Promise<void> {
    await this.#flushing;
    if (this.#pending.size) await this.#startFlush();
    this.#rethrowFlushError();
  }

  #rethrowFlushError(): void {
    const f = this.#flushError;
    if (f) {
      this.#flushError = null;
      throw f.e;
    }
  }

  /**
   * Names queued objects (their data is already on disk): all of them, or those of `batch` that
   * are still queued (a {@link sync} may have named them meanwhile).
   */
  #publish(batch: Iterable<[ObjectId, Queued]> = this.#pending): void {
    for (const [id, p] of batch) {
      if (this.#pending.get(id) !== p) continue;
      try {
        this.#name(id, p);
      } finally {
        if (p.fd >= 0) close(p.fd);
        this.#pending.delete(id);
      }
    }
  }

  /**
   * Gives a queued object its name. The link is tried first: in an import almost every object is
   * new, so looking before linking would cost a system call per object for nothing.
   */
  #name(id: ObjectId, p: Queued): void {
    const dest = this.objectPath(id);
    this.#ensureDir(`${this.path}/objects/${id.slice(0, 2)}`);
    try {
      if (p.name) renameat2(`${this.path}/${p.name}`, dest, RENAME_NOREPLACE);
      else linkFd(p.fd, objectSubpath(id), this.#objectsRef());
      return;
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw e;
    }
    const existing = lstat(dest);
    if (existing?.isFile && existing.size === p.size) {
      if (p.name) unlink(`${this.path}/${p.name}`); // someone else stored it meanwhile
      return;
    }
    // A file of another size cannot have this digest: it is damaged (e.g. cut short by a crash).
    this.#log(`replacing damaged object ${dest} (size ${existing?.size}, expected ${p.size})`);
    if (p.name) Deno.renameSync(`${this.path}/${p.name}`, dest);
    else {
      const tmp = `${this.path}/objects/${randomName(".tmp-object-")}`;
      linkFd(p.fd, tmp);
      Deno.renameSync(tmp, dest);
    }
  }

  /** Stores `data` as an object (deduplicated by digest). */
  ensureObject(data: Uint8Array): Stored {
    this.checkWritable();
    const digest = fsverityDigest(data, this.alg);
    const id = objectIdFromBytes(digest);
    if (this.#present(id, data.length)) return { id, method: "present", size: data.length };
    const s = this.#staging();
    try {
      writeAll(s.fd, data, "new object");
      return this.#commit(s, digest, data.length, id);
    } catch (e) {
      this.#cleanup(s);
      throw e;
    }
  }

  /**
   * Names a fully written staging file: its id (the kernel's fs-verity digest, or the userspace
   * `digest` — hashed now if null — where there is none), queued unless present, and how it was
   * stored. `absent` is an id the
   * caller already found missing, so the existence check is not repeated.
   */
  #commit(s: Staging, digest: Uint8Array | null, size: number, absent?: ObjectId): Stored {
    const id = this.#verify(s, digest);
    const m = this.#finalize(s, id, size, id === absent);
    return { id, method: m === "stored" ? "copied" : m, size };
  }

  #cleanup(s: Staging): void {
    try {
      this.#discard(s);
    } catch { /* already closed or removed */ }
  }

  /**
   * A userspace hasher for a new object's digest (insecure repositories only; null otherwise).
   * Reused: an import stores thousands of small files, each would allocate a tree's buffers.
   * Concurrent stores each hold their own until {@link #releaseHasher}.
   */
  #takeHasher(): FsVerityHasher | null {
    if (!this.insecure) return null;
    const h = this.#hashers.pop() ?? new FsVerityHasher(this.alg);
    h.reset();
    return h;
  }

  #releaseHasher(h: FsVerityHasher | null): void {
    if (h) this.#hashers.push(h);
  }

  /** Stores the content of a stream of chunks as an object, hashing while copying. */
  async ensureObjectFromStream(source: AsyncIterable<Uint8Array>): Promise<Stored> {
    const w = this.#objectWriter();
    try {
      for await (const chunk of source) w.write(chunk);
      return w.commit();
    } catch (e) {
      w.abort();
      throw e;
    }
  }

  /**
   * Stores what `produce` writes, in order, as an object: each chunk goes to disk (and the hash)
   * when written, so the content is never held whole.
   */
  ensureObjectWritten(produce: Producer): Stored {
    const w = this.#objectWriter();
    try {
      produce((chunk) => w.write(chunk));
      return w.commit();
    } catch (e) {
      w.abort();
      throw e;
    }
  }

  /** A new object written chunk by chunk: `commit` names it; `abort` (also after a failed `commit`) drops it. */
  #objectWriter(): { write(chunk: Uint8Array): void; commit(): Stored; abort(): void } {
    this.checkWritable();
    const s = this.#staging();
    const h = this.#takeHasher();
    let size = 0;
    return {
      write: (chunk) => {
        writeAll(s.fd, chunk, "new object");
        h?.update(chunk);
        size += chunk.length;
      },
      commit: () => {
        const stored = this.#commit(s, h ? h.digest() : null, size);
        this.#releaseHasher(h);
        return stored;
      },
      abort: () => {
        this.#cleanup(s);
        this.#releaseHasher(h);
      },
    };
  }

  /**
   * Copies a regular file into a new object. The data moves inside the kernel (copy_file_range)
   * while each 1 MiB block is read once for the userspace digest; where the pair of files does not
   * allow copy_file_range, the blocks read are written instead.
   */
  #copyFromFd(fd: number, what: string, onData?: (chunk: Uint8Array) => void): Stored {
    const s = this.#staging();
    const h = this.#takeHasher();
    try {
      const buf = this.#copyBuf ??= new Uint8Array(IO_SIZE); // synchronous: one buffer serves every copy
      let size = 0;
      for (;;) {
        const n = pread(fd, buf, size, what);
        if (n === 0) break;
        const chunk = buf.subarray(0, n);
        h?.update(chunk);
        onData?.(chunk);
        if (this.#noCopyRange || !this.#copyRange(fd, size, s.fd, n, what)) writeAll(s.fd, chunk, "new object");
        size += n;
      }
      return this.#commit(s, h ? h.digest() : null, size);
    } catch (e) {
      this.#cleanup(s);
      throw e;
    } finally {
      this.#releaseHasher(h);
    }
  }

  /** copy_file_range of one block; false (and not tried again) when the filesystems do not allow it. */
  #copyRange(src: number, offset: number, dst: number, len: number, what: string): boolean {
    const n = tryCopyFileRange(src, offset, dst, len, what);
    if (n === null) {
      this.#noCopyRange = true;
      return false;
    }
    if (n !== len) throw new Error(`${what}: file shrank while being copied`);
    return true;
  }

  #repoDev(): number {
    return this.#dev ??= Deno.statSync(this.#objectsDir()).dev;
  }

  /**
   * Stores an existing file as an object, trying a reflink, then a hardlink of the file itself,
   * then a copy; the result says which. Failures of a method are remembered per device pair.
   * `copyOnly` skips reflink and hardlink (for source files that may still change). `onData` sees
   * the bytes read for the userspace digest, so a caller can check them another way without
   * reading the file again; where the kernel measures the object (secure repositories) nothing is
   * read and it is not called.
   */
  ensureObjectFromFile(
    path: string,
    opts: { copyOnly?: boolean; onData?: (chunk: Uint8Array) => void } = {},
  ): Stored {
    this.checkWritable();
    const src = open(path, O_RDONLY | O_NOFOLLOW);
    try {
      const st = Deno.statSync(`/proc/self/fd/${src}`);
      if (!st.isFile) throw new Error(`${path}: not a regular file`);
      if (opts.copyOnly) return this.#copyFromFd(src, path, opts.onData);
      const pair = `${st.dev}:${this.#repoDev()}`;
      if (!this.#noReflink.has(pair)) {
        const s = this.#staging();
        try {
          // A userspace digest is taken from the source, whose pages are usually cached, not from
          // the clone, whose reads go to the disk: the same bytes, as the clone shares the source's
          // extents and a source that may change must come with `copyOnly`.
          const digest = this.insecure && this.#noVerity ? hashFd(src, this.alg, path, opts.onData) : null;
          ficlone(s.fd, src, path);
          const id = this.#verify(s, digest, digest ? undefined : opts.onData);
          const m = this.#finalize(s, id, st.size);
          return { id, method: m === "stored" ? "reflinked" : m, size: st.size };
        } catch (e) {
          this.#cleanup(s);
          const code = errnoCode(e);
          if (code !== "EOPNOTSUPP" && code !== "EXDEV" && code !== "EINVAL" && code !== "ENOTTY") throw e;
          this.#noReflink.add(pair);
          this.#log(`${path}: no reflinks from this filesystem into the repository (${code}); trying hardlinks`);
        }
      }
      if (!this.#noHardlink.has(pair)) {
        const stored = this.#hardlink(src, path, st.size, opts.onData);
        if (stored) return stored;
        this.#noHardlink.add(pair);
        this.#log(`${path}: no hardlinks from this filesystem into the repository; copying`);
      }
      return this.#copyFromFd(src, path, opts.onData);
    } finally {
      close(src);
    }
  }

  /** Links the source file itself into `objects/`; null when the filesystem pair does not allow it. */
  #hardlink(src: number, path: string, size: number, onData?: (chunk: Uint8Array) => void): Stored | null {
    let id: ObjectId;
    if (this.insecure) id = objectIdFromBytes(hashFd(src, this.alg, path, onData));
    else {
      if (!enableFd(src, this.alg, path)) return null;
      const m = measureFd(src, this.alg, path);
      if (m.state !== "enabled") return null;
      id = objectIdFromBytes(m.digest);
    }
    const dest = this.objectPath(id);
    if (this.#present(id, size)) return { id, method: "present", size };
    if (lstat(dest)) return null; // a damaged object is replaced through the copy path
    this.#ensureDir(`${this.path}/objects/${id.slice(0, 2)}`);
    try {
      linkFd(src, dest);
      return { id, method: "hardlinked", size };
    } catch (e) {
      const code = errnoCode(e);
      if (code === "EEXIST") return { id, method: "present", size };
      if (code === "EXDEV" || code === "EPERM" || code === "EMLINK") return null;
      throw e;
    }
  }

  /**
   * Opens an object read-only without following symlinks. Where the file has kernel fs-verity its
   * digest must equal `id`; a secure repository requires it.
   */
  openObject(id: ObjectId): number {
    const p = this.#pending.get(id);
    const path = p ? (p.name ? `${this.path}/${p.name}` : `/proc/self/fd/${p.fd}`) : this.objectPath(id);
    const fd = open(path, p?.name || !p ? O_RDONLY | O_NOFOLLOW : O_RDONLY);
    try {
      const m = measureFd(fd, this.alg, path);
      if (m.state === "enabled" && objectIdFromBytes(m.digest) !== id) {
        throw new Error(`${path}: fs-verity digest ${objectIdFromBytes(m.digest)} does not match its name`);
      }
      if (m.state !== "enabled" && !this.insecure) throw new Error(`${path}: object has no fs-verity`);
      return fd;
    } catch (e) {
      close(fd);
      throw e;
    }
  }

  /** The whole content of an object, checked against `id` (in userspace when there is no kernel verity). */
  readObject(id: ObjectId): Uint8Array {
    const fd = this.openObject(id);
    let data: Uint8Array;
    try {
      data = readAllFd(fd, this.objectPath(id));
    } finally {
      close(fd);
    }
    if (objectIdFromBytes(fsverityDigest(data, this.alg)) !== id) {
      throw new Error(`${this.objectPath(id)}: content does not match its name (corrupt or truncated object)`);
    }
    return data;
  }

  // ---- links and refs -------------------------------------------------------------------------

  /** Creates or atomically replaces the symlink `link` (repository-relative) → `target` (repository-relative). */
  #symlink(link: string, target: string): void {
    const rel = relativeTarget(link, target);
    const parts = link.split("/");
    for (let i = 1; i < parts.length; i++) {
      try {
        Deno.mkdirSync(`${this.path}/${parts.slice(0, i).join("/")}`, { mode: 0o755 });
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
    }
    const abs = `${this.path}/${link}`;
    try {
      Deno.symlinkSync(rel, abs);
      return;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const st = lstat(abs);
    if (st?.isSymlink && Deno.readLinkSync(abs) === rel) return;
    if (st && !st.isSymlink) throw new Error(`${abs} exists and is not a symlink`);
    for (let attempt = 0;; attempt++) {
      const tmp = `${this.path}/${randomName(".symlink-")}`;
      try {
        Deno.symlinkSync(rel, tmp);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists && attempt < 15) continue;
        throw e;
      }
      try {
        Deno.renameSync(tmp, abs);
        return;
      } catch (e) {
        Deno.removeSync(tmp);
        throw e;
      }
    }
  }

  /**
   * The object a top-level `streams/<name>` or `images/<name>` link points at, or null when it does
   * not exist. A link that is not exactly `../objects/XX/…` is refused, never followed.
   */
  linkedObject(kind: LinkKind, name: string): ObjectId | null {
    checkEntryName(name, kind === "streams" ? "stream" : "image");
    const abs = `${this.path}/${kind}/${name}`;
    const st = lstat(abs);
    if (!st) return null;
    if (!st.isSymlink) throw new Error(`${abs} is not a symlink`);
    const target = Deno.readLinkSync(abs);
    const id = parseObjectLinkTarget(target, this.alg);
    if (!id) {
      throw new Error(`refusing ${abs}: its target ${JSON.stringify(target)} is not an object of this repository`);
    }
    return id;
  }

  /**
   * The top-level entry a ref `<kind>/refs/<name>` points at, or null when there is no such ref.
   * Targets other than the `../…/<entry>` form composefs-rs writes are refused.
   */
  refTarget(kind: LinkKind, name: string): string | null {
    checkRefName(name);
    const abs = `${this.path}/${kind}/refs/${name}`;
    const st = lstat(abs);
    if (!st) return null;
    if (!st.isSymlink) throw new Error(`${abs} is not a symlink`);
    const target = Deno.readLinkSync(abs);
    const entry = parseRefTarget(name, target);
    if (entry === null) throw new Error(`refusing ${abs}: its target ${JSON.stringify(target)} is not a ${kind} entry`);
    return entry;
  }

  /** Resolves `name` (a top-level entry, or `refs/<ref>`) to the entry name and its object. */
  resolve(kind: LinkKind, name: string): { entry: string; id: ObjectId } | null {
    const entry = name.startsWith("refs/") ? this.refTarget(kind, name.slice(5)) : name;
    if (entry === null) return null;
    const id = this.linkedObject(kind, entry);
    return id && { entry, id };
  }

  /** Sets `<kind>/refs/<name>` → `<kind>/<entry>`, replacing an existing ref atomically. */
  setRef(kind: LinkKind, name: string, entry: string): void {
    this.checkWritable();
    checkRefName(name);
    checkEntryName(entry, kind);
    this.#symlink(`${kind}/refs/${name}`, `${kind}/${entry}`);
  }

  /** Removes `<kind>/refs/<name>`; false when there was none. */
  removeRef(kind: LinkKind, name: string): boolean {
    this.checkWritable();
    checkRefName(name);
    return removeIfExists(`${this.path}/${kind}/refs/${name}`);
  }

  /** All refs under `<kind>/refs/<prefix>` (recursive): name relative to `refs/`, and raw link target. */
  listRefs(kind: LinkKind, prefix = ""): { name: string; target: string }[] {
    if (prefix) checkRefName(prefix);
    const out: { name: string; target: string }[] = [];
    const walk = (rel: string) => {
      const abs = `${this.path}/${kind}/refs${rel ? `/${rel}` : ""}`;
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(abs)];
      } catch (e) {
        if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
        throw e;
      }
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        const name = rel ? `${rel}/${e.name}` : e.name;
        if (e.isSymlink) out.push({ name, target: Deno.readLinkSync(`${abs}/${e.name}`) });
        else if (e.isDirectory) walk(name);
      }
    };
    walk(prefix);
    return out;
  }

  // ---- streams ----------------------------------------------------------------------------------

  /** A splitstream writer for this repository's algorithm. */
  createStreamWriter(contentType: bigint): SplitStreamWriter {
    return new SplitStreamWriter(this.alg, contentType);
  }

  /** Stores `bytes` as an object and appends it to `writer` as an external chunk. */
  writeExternal(writer: SplitStreamWriter, bytes: Uint8Array): ObjectId {
    const { id } = this.ensureObject(bytes);
    writer.addExternal(id, bytes.length);
    return id;
  }

  /** Finishes `writer`, stores it, and registers it as `streams/<contentId>` (and `streams/refs/<ref>`). */
  writeStream(writer: SplitStreamWriter, contentId: string, ref?: string): ObjectId {
    checkEntryName(contentId, "stream");
    const { id } = this.ensureObject(writer.finish());
    this.registerStream(id, contentId, ref);
    return id;
  }

  /** Makes an already stored splitstream visible: syncfs, then `streams/<contentId>`, then the ref. */
  registerStream(id: ObjectId, contentId: string, ref?: string): void {
    this.checkWritable();
    checkEntryName(contentId, "stream");
    if (ref !== undefined) checkRefName(ref);
    if (!this.hasObject(id)) throw new Error(`cannot register stream ${contentId}: object ${id} is missing`);
    this.sync();
    this.#symlink(`streams/${contentId}`, `objects/${objectSubpath(id)}`);
    if (ref !== undefined) this.#symlink(`streams/refs/${ref}`, `streams/${contentId}`);
  }

  /** The object of `streams/<contentId>`, or null. */
  hasStream(contentId: string): ObjectId | null {
    return this.linkedObject("streams", contentId);
  }

  /** Points `streams/refs/<name>` at `streams/<contentId>` (the stream need not exist yet). */
  nameStream(contentId: string, name: string): void {
    this.setRef("streams", name, contentId);
  }

  /** Opens and parses the stream `name` (a content id or `refs/<ref>`); its object is checked. */
  openStream(name: string, contentType?: bigint): SplitStream {
    const r = this.resolve("streams", name);
    if (!r) throw new Error(`no stream ${JSON.stringify(name)} in ${this.path}`);
    const s = SplitStream.parse(this.readObject(r.id), this.alg);
    if (contentType !== undefined && s.contentType !== contentType) {
      throw new Error(`stream ${name} has content type ${s.contentType}, expected ${contentType}`);
    }
    return s;
  }

  /** Reassembles stream `name` into `sink`, reading external chunks as verified objects. */
  async catStream(name: string, sink: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
    for (const c of this.openStream(name).chunks()) {
      await sink.write(c.kind === "inline" ? c.bytes.slice() : this.readObject(c.id));
    }
  }

  // ---- images -----------------------------------------------------------------------------------

  /**
   * Stores an EROFS image: object, `images/<hex>`, and `images/refs/<name>` when given. The image is
   * its bytes, or what a producer writes (see {@link ensureObjectWritten}).
   */
  writeImage(image: Uint8Array | Producer, name?: string): ObjectId {
    if (name !== undefined) checkRefName(name);
    const { id } = image instanceof Uint8Array ? this.ensureObject(image) : this.ensureObjectWritten(image);
    this.sync();
    this.#symlink(`images/${id}`, `objects/${objectSubpath(id)}`);
    if (name !== undefined) this.#symlink(`images/refs/${name}`, `images/${id}`);
    return id;
  }

  /** Removes a file or symlink inside the repository (used by GC and fsck repair). */
  removeEntry(rel: string): void {
    unlink(`${this.path}/${rel}`);
  }

  /** Removes many files or symlinks inside the repository, several at a time (GC's sweep). */
  async removeEntries(rels: string[]): Promise<void> {
    await unlinkAll(rels.map((r) => `${this.path}/${r}`));
  }
}

/** Reads a whole file from an fd (meta.json, objects that fit in memory). */
export function readAllFd(fd: number, what: string): Uint8Array {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(IO_SIZE);
  for (let n = read(fd, buf, what); n > 0; n = read(fd, buf, what)) parts.push(buf.slice(0, n));
  return concat(parts);
}

/**
 * Writes `meta.json` once: O_TMPFILE (fallback O_CREAT|O_EXCL), fsync, fs-verity when secure, then
 * link into place. EEXIST when it already exists.
 */
export function writeMetaFile(dir: string, text: string, alg: HashAlg, secure: boolean): void {
  const dest = `${dir}/meta.json`;
  const data = enc.encode(text);
  let fd: number;
  let anonymous = true;
  try {
    fd = openTmpfile(dir, 0o644);
  } catch (e) {
    const code = errnoCode(e);
    if (code !== "EOPNOTSUPP" && code !== "EISDIR" && code !== "ENOSYS") throw e;
    fd = open(dest, O_CREAT | O_EXCL | O_RDWR, 0o644);
    anonymous = false;
  }
  try {
    writeAll(fd, data, dest);
    fsync(fd, dest);
    if (secure) {
      // fs-verity needs the writable fd gone; the read-only reopen keeps the (anonymous) file.
      const ro = open(`/proc/self/fd/${fd}`, O_RDONLY);
      close(fd);
      fd = ro;
      if (!enableFd(ro, alg, dest)) {
        throw new Error(
          `cannot enable fs-verity on ${dest}: this filesystem or kernel has no fs-verity; use --insecure`,
        );
      }
    }
    if (anonymous) linkFd(fd, dest);
  } catch (e) {
    if (!anonymous && errnoCode(e) !== "EEXIST") {
      try {
        Deno.removeSync(dest);
      } catch { /* not created */ }
    }
    throw e;
  } finally {
    close(fd);
  }
}
