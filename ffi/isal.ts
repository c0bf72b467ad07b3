/**
 * gzip decompression through Intel ISA-L (`libisal.so.2`), about twice as fast as zlib on layer
 * blobs; same interface as the zlib {@link Inflater}, `isal_inflate` also on an FFI worker thread.
 * ISA-L parses the gzip header and checks the CRC32/ISIZE trailer itself (crc_flag ISAL_GZIP).
 *
 * `isalAvailable` is false when the library cannot be loaded (minimal systems) or
 * `BOOTCFS_NO_ISAL=1` forces zlib (tests, benchmarks); callers then use zlib.
 *
 * @module
 */
import type { Inflater } from "./zlib.ts";

function load() {
  try {
    return Deno.dlopen(
      "libisal.so.2",
      {
        isal_inflate_init: { parameters: ["buffer"], result: "void" },
        isal_inflate_reset: { parameters: ["buffer"], result: "void" },
        isal_inflate: { parameters: ["buffer"], result: "i32", nonblocking: true },
        /** The same function on the calling thread, for the load-time check. */
        isal_inflate_sync: { name: "isal_inflate", parameters: ["buffer"], result: "i32" },
      } as const,
    );
  } catch {
    return null;
  }
}

/**
 * `struct inflate_state` of ISA-L 2.30.0 on x86-64 (Debian 12 `libisal-dev`,
 * /usr/include/isa-l/igzip_lib.h), measured with offsetof/sizeof. The struct is not part of a
 * stable ABI across major versions, hence the soname pin and the check in {@link selfTest}.
 */
const STATE_SIZE = 87368;
const NEXT_OUT = 0, AVAIL_OUT = 8, NEXT_IN = 16, AVAIL_IN = 32, BLOCK_STATE = 21160, CRC_FLAG = 21172;
/** Slack after the struct: a somewhat larger struct in another build must not overrun our buffer. */
const STATE_SLACK = 4096;
/** enum isal_block_state: the member is decoded, its trailer checked and all output flushed. */
const ISAL_BLOCK_FINISH = 5;
const ISAL_GZIP = 1;
const ISAL_DECOMP_OK = 0, ISAL_END_INPUT = 1, ISAL_OUT_OVERFLOW = 2;
const ERRORS: Record<number, string> = {
  [-1]: "invalid deflate block",
  [-2]: "invalid deflate symbol",
  [-3]: "invalid lookback distance",
  [-4]: "invalid gzip header",
  [-5]: "unsupported compression method",
  [-6]: "incorrect checksum or length",
};

const lib = load();

function addr(b: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

function newState(): { state: Uint8Array; v: DataView } {
  const state = new Uint8Array(STATE_SIZE + STATE_SLACK);
  lib!.symbols.isal_inflate_init(state);
  const v = new DataView(state.buffer);
  v.setUint32(CRC_FLAG, ISAL_GZIP, true);
  return { state, v };
}

/**
 * Decodes `printf ok | gzip -n` through the hardcoded offsets: a library whose struct layout
 * differs (another ISA-L build) fails here rather than corrupting data, and zlib is used.
 */
function selfTest(): boolean {
  const input = new Uint8Array([31, 139, 8, 0, 0, 0, 0, 0, 0, 3, 203, 207, 6, 0, 71, 221, 220, 121, 2, 0, 0, 0]);
  const out = new Uint8Array(8);
  const { state, v } = newState();
  v.setBigUint64(NEXT_IN, addr(input), true);
  v.setUint32(AVAIL_IN, input.length, true);
  v.setBigUint64(NEXT_OUT, addr(out), true);
  v.setUint32(AVAIL_OUT, out.length, true);
  const r = lib!.symbols.isal_inflate_sync(state);
  return r === ISAL_DECOMP_OK && v.getInt32(BLOCK_STATE, true) === ISAL_BLOCK_FINISH &&
    v.getUint32(AVAIL_IN, true) === 0 && v.getUint32(AVAIL_OUT, true) === 6 && out[0] === 0x6f && out[1] === 0x6b;
}

const works = lib !== null && selfTest();

/** Whether decompression should use ISA-L: the library loads and BOOTCFS_NO_ISAL is unset. */
export const isalAvailable: boolean = works && !Deno.env.get("BOOTCFS_NO_ISAL");

/** ISA-L's streaming gzip decoder; the constructor throws when `libisal.so.2` is unusable. */
export class IsalInflater implements Inflater {
  #state: Uint8Array;
  #v: DataView;
  /** The input and output ISA-L holds addresses of, kept alive here. */
  #in: Uint8Array = new Uint8Array(0);
  #out: Uint8Array = new Uint8Array(0);
  #live = true;
  /** The isal_inflate call running on the worker thread, if any. */
  #running: Promise<number> | null = null;

  constructor() {
    if (!works) throw new Error("ISA-L (libisal.so.2) is not available");
    ({ state: this.#state, v: this.#v } = newState());
  }

  get availIn(): number {
    return this.#v.getUint32(AVAIL_IN, true);
  }

  get nextByte(): number {
    return this.#in[this.#in.length - this.availIn];
  }

  setInput(b: Uint8Array): void {
    this.#in = b;
    this.#v.setBigUint64(NEXT_IN, b.length ? addr(b) : 0n, true);
    this.#v.setUint32(AVAIL_IN, b.length, true);
  }

  async inflate(out: Uint8Array): Promise<{ n: number; end: boolean }> {
    if (!this.#live || this.#running) throw new Error("ISA-L: inflater freed or busy");
    this.#out = out;
    this.#v.setBigUint64(NEXT_OUT, addr(out), true);
    this.#v.setUint32(AVAIL_OUT, out.length, true);
    this.#running = lib!.symbols.isal_inflate(this.#state);
    let r: number;
    try {
      r = await this.#running;
    } finally {
      this.#running = null;
    }
    if (r !== ISAL_DECOMP_OK && r !== ISAL_END_INPUT && r !== ISAL_OUT_OVERFLOW) {
      throw new Error(`not valid gzip data: ${ERRORS[r] ?? `ISA-L error ${r}`}`);
    }
    const n = out.length - this.#v.getUint32(AVAIL_OUT, true);
    return { n, end: this.#v.getInt32(BLOCK_STATE, true) === ISAL_BLOCK_FINISH };
  }

  reset(): void {
    // At the end of a member ISA-L has handed the whole bytes of its bit buffer back to next_in,
    // so the next member starts at the first unconsumed byte. isal_inflate_reset 2.30 keeps
    // next_in/avail_in and crc_flag; they are restored anyway, as nothing documents that.
    const next = this.#v.getBigUint64(NEXT_IN, true), avail = this.availIn;
    lib!.symbols.isal_inflate_reset(this.#state);
    this.#v.setBigUint64(NEXT_IN, next, true);
    this.#v.setUint32(AVAIL_IN, avail, true);
    this.#v.setUint32(CRC_FLAG, ISAL_GZIP, true);
  }

  async free(): Promise<void> {
    await this.#running?.catch(() => {});
    this.#live = false;
    this.#out = this.#in = new Uint8Array(0);
  }
}
