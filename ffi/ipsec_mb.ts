/**
 * Multi-buffer SHA-512 from Intel's ipsec-mb (`libIPSec_MB.so.1`, Debian's libipsec-mb1): the
 * fs-verity leaves of a file are independent 4 KiB hashes, and ipsec-mb computes eight of them at
 * once in AVX-512 lanes (four in AVX2). Measured here on 4 KiB blocks: OpenSSL 1.0 GB/s, ipsec-mb
 * AVX-512 3.1–3.8 GB/s in batches of eight or more, 1.1 GB/s for two, slower than OpenSSL for one.
 *
 * The binding fills `IMB_JOB` fields by offset — those of ipsec-mb 1.3 on x86-64 — so only that
 * version is used, and only after a self-test (known blocks must hash as libcrypto hashes them).
 * {@link Sha512Lanes.create} is null otherwise, on CPUs without AVX2, or with
 * `BOOTCFS_NO_IPSEC_MB=1`; callers hash block by block then.
 *
 * @module
 */
import { libcrypto } from "./crypto.ts";
import { dropLibraryText } from "./libc.ts";

const job = { parameters: ["pointer"], result: "pointer" } as const;

function load() {
  return Deno.dlopen(
    "libIPSec_MB.so.1",
    {
      imb_get_version: { parameters: [], result: "u32" },
      alloc_mb_mgr: { parameters: ["u64"], result: "pointer" },
      init_mb_mgr_auto: { parameters: ["pointer", "buffer"], result: "void" },
      get_next_job_avx2: job,
      submit_job_nocheck_avx2: job,
      flush_job_avx2: job,
      get_next_job_avx512: job,
      submit_job_nocheck_avx512: job,
      flush_job_avx512: job,
    } as const,
  );
}

type JobFn = (mgr: Deno.PointerValue) => Deno.PointerValue;
/** A job manager's entry points for the architecture `init_mb_mgr_auto` chose. */
interface JobApi {
  next: JobFn;
  submit: JobFn;
  flush: JobFn;
}

/** The architectures used (`IMB_ARCH_AVX2`, `IMB_ARCH_AVX512`); SSE lanes are slower than OpenSSL. */
function jobApi(lib: ReturnType<typeof load>, arch: number): JobApi | null {
  const s = lib.symbols;
  if (arch === 5) {
    return { next: s.get_next_job_avx512, submit: s.submit_job_nocheck_avx512, flush: s.flush_job_avx512 };
  }
  if (arch === 4) return { next: s.get_next_job_avx2, submit: s.submit_job_nocheck_avx2, flush: s.flush_job_avx2 };
  return null;
}

/** `struct IMB_MGR` (it holds the job ring) and the `IMB_JOB` field offsets of ipsec-mb 1.3. */
const MGR_SIZE = 52520;
const JOB_SIZE = 200;
const SRC = 24, HASH_OFFSET = 56, HASH_LEN = 64, TAG = 88, TAG_LEN = 96, STATUS = 128;
const CIPHER_MODE = 132, CIPHER_DIR = 136, HASH_ALG = 140, CHAIN_ORDER = 144;
const CIPHER_NULL = 3, DIR_ENCRYPT = 1, AUTH_SHA_512 = 17, ORDER_HASH_CIPHER = 2, STATUS_COMPLETED = 3;
const VERSION_1_3 = 0x0103;
const DIGEST = 64;

function address(p: Deno.PointerValue): number {
  return Number(Deno.UnsafePointer.value(p));
}

/** A thread's SHA-512 job manager. Not shared between threads: each worker makes its own. */
export class Sha512Lanes {
  #api: JobApi;
  #mgr: Deno.PointerObject;
  #mgrAddr: number;
  /** The manager's memory, where the jobs handed out live. */
  #words: Uint32Array;

  private constructor(api: JobApi, mgr: Deno.PointerObject) {
    this.#api = api;
    this.#mgr = mgr;
    this.#mgrAddr = address(mgr);
    this.#words = new Uint32Array(Deno.UnsafePointerView.getArrayBuffer(mgr, MGR_SIZE));
  }

  static #made: Sha512Lanes | null | undefined;

  /** This thread's manager, or null when ipsec-mb cannot be used here (see the module doc). */
  static create(): Sha512Lanes | null {
    if (Sha512Lanes.#made === undefined) Sha512Lanes.#made = Sha512Lanes.#open();
    return Sha512Lanes.#made;
  }

  static #open(): Sha512Lanes | null {
    if (Deno.env.get("BOOTCFS_NO_IPSEC_MB")) return null;
    try {
      const lib = load();
      if (lib.symbols.imb_get_version() >> 8 !== VERSION_1_3) return lib.close(), null;
      // The manager lives as long as the thread: the library stays loaded.
      const mgr = lib.symbols.alloc_mb_mgr(0n);
      if (!mgr) return null;
      const arch = new Uint32Array(1);
      lib.symbols.init_mb_mgr_auto(mgr, arch);
      const api = jobApi(lib, arch[0]);
      if (!api) return null;
      const lanes = new Sha512Lanes(api, mgr);
      if (!lanes.#selfTest()) return null;
      // Initialising a manager touches code all over the 12 MiB library, 2.9 MiB of it resident
      // (the kernel maps 64 KiB around each fault); hashing needs a few hundred KiB of it.
      dropLibraryText("libIPSec_MB.so");
      return lanes;
    } catch {
      return null;
    }
  }

  /** Three blocks in one batch and one alone must hash as SHA-512 (the offsets fit this library). */
  #selfTest(): boolean {
    const data = new Uint8Array(4 * 4096).map((_, i) => (i * 131 + 7) & 255);
    const out = new Uint8Array(4 * DIGEST);
    this.hashBlocks(data, 0, 4096, 3, out, 0);
    this.hashBlocks(data, 3 * 4096, 4096, 1, out, 3 * DIGEST);
    const want = new Uint8Array(DIGEST);
    for (let i = 0; i < 4; i++) {
      const block = data.subarray(i * 4096, (i + 1) * 4096);
      if (libcrypto) libcrypto.sha512(block, want);
      else want.set(process.getBuiltinModule("node:crypto").createHash("sha512").update(block).digest());
      if (want.some((b, k) => b !== out[i * DIGEST + k])) return false;
    }
    return true;
  }

  #setAddress(word: number, value: number): void {
    this.#words[word] = value >>> 0;
    this.#words[word + 1] = Math.floor(value / 0x1_0000_0000);
  }

  /** The job's first word in {@link #words}; a job outside the manager's memory is an error. */
  #jobWord(job: Deno.PointerValue): number {
    const off = address(job) - this.#mgrAddr;
    if (off < 0 || off + JOB_SIZE > MGR_SIZE || off % 8) throw new Error("ipsec-mb: job outside its manager");
    return off >> 2;
  }

  /**
   * SHA-512 of `count` consecutive `blockSize`-byte blocks of `src` from `srcOffset`, the digests
   * written one after another into `out` from `outOffset`. All jobs are finished on return, so the
   * caller may reuse `src` at once.
   */
  hashBlocks(src: Uint8Array, srcOffset: number, blockSize: number, count: number, out: Uint8Array, outOffset: number) {
    if (srcOffset + count * blockSize > src.length || outOffset + count * DIGEST > out.length) {
      throw new RangeError("ipsec-mb: blocks outside their buffers");
    }
    if (count === 0) return;
    const s = this.#api;
    const w = this.#words;
    const srcAddr = address(Deno.UnsafePointer.of(src)) + srcOffset;
    const outAddr = address(Deno.UnsafePointer.of(out)) + outOffset;
    let done = 0;
    const finished = (job: Deno.PointerValue) => {
      if (w[this.#jobWord(job) + STATUS / 4] !== STATUS_COMPLETED) throw new Error("ipsec-mb: a SHA-512 job failed");
      done++;
    };
    for (let i = 0; i < count; i++) {
      const j = this.#jobWord(s.next(this.#mgr));
      w[j + CIPHER_MODE / 4] = CIPHER_NULL;
      w[j + CIPHER_DIR / 4] = DIR_ENCRYPT;
      w[j + HASH_ALG / 4] = AUTH_SHA_512;
      w[j + CHAIN_ORDER / 4] = ORDER_HASH_CIPHER;
      this.#setAddress(j + SRC / 4, srcAddr + i * blockSize);
      this.#setAddress(j + HASH_OFFSET / 4, 0);
      this.#setAddress(j + HASH_LEN / 4, blockSize);
      this.#setAddress(j + TAG / 4, outAddr + i * DIGEST);
      this.#setAddress(j + TAG_LEN / 4, DIGEST);
      const completed = s.submit(this.#mgr);
      if (completed) finished(completed);
    }
    for (let job = s.flush(this.#mgr); job; job = s.flush(this.#mgr)) finished(job);
    if (done !== count) throw new Error(`ipsec-mb: ${done} of ${count} SHA-512 jobs came back`);
  }
}
