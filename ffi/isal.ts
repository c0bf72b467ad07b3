/**
 * gzip inflate by ISA-L's igzip (`libisal.so.2`, Debian's libisal2): about a fifth less CPU than
 * Deno's zlib-ng on OS layers, and inflating is the part of a layer import that no other thread can
 * take over. `IsalInflater.create()` is null when the library is missing or does not behave as
 * this binding expects (`BOOTCFS_NO_ISAL=1` forces that); callers fall back to zlib-ng.
 *
 * The binding reaches into `struct inflate_state` by field offsets — those of ISA-L 2.30 (Debian
 * 12) on x86-64 — so loading is followed by a self-test: a small gzip member must inflate to its
 * known content, else the library is not used.
 *
 * @module
 */
import { Inflater } from "../lib/runtime/inflater.ts";

function load() {
  try {
    return Deno.dlopen(
      "libisal.so.2",
      {
        isal_inflate_init: { parameters: ["buffer"], result: "void" },
        isal_inflate_reset: { parameters: ["buffer"], result: "void" },
        isal_inflate: { parameters: ["buffer"], result: "i32" },
      } as const,
    );
  } catch {
    return null;
  }
}

/** `struct inflate_state`: its size and the offsets of the fields used. */
const STATE_SIZE = 87368;
const NEXT_OUT = 0, AVAIL_OUT = 8, NEXT_IN = 16, AVAIL_IN = 32, BLOCK_STATE = 21160, CRC_FLAG = 21172;
const ISAL_GZIP = 1;
const ISAL_BLOCK_FINISH = 5;
const ERRORS: Record<number, string> = {
  [-1]: "invalid block",
  [-2]: "invalid symbol",
  [-3]: "invalid lookback distance",
  [-4]: "invalid gzip header",
  [-5]: "unsupported compression method",
  [-6]: "incorrect checksum",
};

function addr(b: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/** The {@link Inflater} on ISA-L. */
export class IsalInflater extends Inflater {
  #lib: NonNullable<ReturnType<typeof load>>;
  #state = new Uint8Array(STATE_SIZE);
  #view = new DataView(this.#state.buffer);
  /** The address of the input, for the library. */
  #inputAddr = 0n;
  /** The current member has ended (trailer checked); what follows decides: padding or a member. */
  #memberDone = false;
  #closed = false;

  private constructor(lib: NonNullable<ReturnType<typeof load>>) {
    super();
    this.#lib = lib;
    lib.symbols.isal_inflate_init(this.#state);
    this.#view.setUint32(CRC_FLAG, ISAL_GZIP, true);
  }

  static #usable: boolean | null = null;

  /** A new inflater, or null when ISA-L cannot be used here. */
  static create(): IsalInflater | null {
    if (!lib) return null;
    IsalInflater.#usable ??= IsalInflater.#selfTest(lib);
    return IsalInflater.#usable ? new IsalInflater(lib) : null;
  }

  /** Whether a small known member inflates to its content (the struct offsets fit this library). */
  static #selfTest(l: NonNullable<ReturnType<typeof load>>): boolean {
    try {
      const z = new IsalInflater(l);
      z.setInput(PROBE);
      const out = new Uint8Array(64);
      const n = z.inflate(out);
      z.finish();
      return n === 8 && new TextDecoder().decode(out.subarray(0, n)) === "bootcfs\n";
    } catch {
      return false;
    }
  }

  override setInput(b: Uint8Array): void {
    super.setInput(b);
    this.#inputAddr = b.length ? addr(b) : 0n;
  }

  inflate(out: Uint8Array): number {
    if (this.#closed) throw new Error("isal: inflater closed");
    const v = this.#view;
    const outAddr = out.length ? addr(out) : 0n;
    let written = 0;
    while (!this.done && written < out.length) {
      if (this.#memberDone) {
        if (this.availIn === 0) break;
        const next = this.input[this.offset];
        if (next === 0) {
          this.done = true;
          break;
        }
        // Seen at once, as zlib does, rather than as a member header left incomplete at the end.
        if (next !== 0x1f) {
          throw new Error("not valid gzip data: what follows a member is neither padding nor a member");
        }
        this.#lib.symbols.isal_inflate_reset(this.#state);
        v.setUint32(CRC_FLAG, ISAL_GZIP, true);
        this.#memberDone = false;
      }
      const room = out.length - written;
      const avail = this.availIn;
      v.setBigUint64(NEXT_OUT, outAddr + BigInt(written), true);
      v.setUint32(AVAIL_OUT, room, true);
      v.setBigUint64(NEXT_IN, this.#inputAddr + BigInt(this.offset), true);
      v.setUint32(AVAIL_IN, avail, true);
      const r = this.#lib.symbols.isal_inflate(this.#state);
      if (r < 0) throw new Error(`not valid gzip data: ${ERRORS[r] ?? `isal error ${r}`}`);
      const produced = room - v.getUint32(AVAIL_OUT, true);
      const consumed = avail - v.getUint32(AVAIL_IN, true);
      written += produced;
      this.offset += consumed;
      if (v.getUint32(BLOCK_STATE, true) === ISAL_BLOCK_FINISH) this.#memberDone = true;
      else if (produced === 0 && consumed === 0) {
        // ISA-L takes in whatever input it cannot use yet; input left over would be lost here.
        if (this.availIn > 0) throw new Error("isal: inflate made no progress with input left");
        break; // needs more input
      }
    }
    return written;
  }

  finish(): void {
    if (this.done) return;
    if (!this.#memberDone) throw new Error("gzip data is truncated");
    this.done = true;
  }

  close(): void {
    this.#closed = true;
    this.input = new Uint8Array(0);
    this.#inputAddr = 0n;
  }
}

const lib = Deno.env.get("BOOTCFS_NO_ISAL") ? null : load();

/** `gzip -n` of "bootcfs\n": what the self-test inflates. */
const PROBE = new Uint8Array([
  0x1f,
  0x8b,
  0x08,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x03,
  0x4b,
  0xca,
  0xcf,
  0x2f,
  0x49,
  0x4e,
  0x2b,
  0xe6,
  0x02,
  0x00,
  0x77,
  0x93,
  0xec,
  0xfe,
  0x08,
  0x00,
  0x00,
  0x00,
]);
