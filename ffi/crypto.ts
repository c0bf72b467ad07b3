/**
 * One-shot SHA-256/SHA-512 from libcrypto (OpenSSL 3), for the per-block hashing of fs-verity,
 * where node:crypto's per-call overhead costs about a third of the speed.
 *
 * `libcrypto` is null when `libcrypto.so.3` cannot be loaded (minimal systems); callers fall
 * back to node:crypto.
 *
 * @module
 */

function load() {
  try {
    return Deno.dlopen(
      "libcrypto.so.3",
      {
        SHA256: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
        SHA512: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
        EVP_sha256: { parameters: [], result: "pointer" },
        EVP_MD_CTX_new: { parameters: [], result: "pointer" },
        EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
        EVP_DigestInit_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
        EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32", nonblocking: true },
        EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "pointer"], result: "i32" },
      } as const,
    );
  } catch {
    return null;
  }
}

const lib = Deno.env.get("BOOTCFS_NO_LIBCRYPTO") ? null : load();

/** One-shot digests into a caller-provided output buffer, or null when libcrypto is unavailable. */
export const libcrypto: {
  sha256(data: Uint8Array, out: Uint8Array): void;
  sha512(data: Uint8Array, out: Uint8Array): void;
} | null = lib && {
  sha256: (data, out) => void lib.symbols.SHA256(data, BigInt(data.length), out),
  sha512: (data, out) => void lib.symbols.SHA512(data, BigInt(data.length), out),
};

/**
 * A running SHA-256 whose updates are computed on an FFI worker thread: the caller goes on with
 * its own work meanwhile, and must leave each chunk untouched until its update has resolved.
 * Null when libcrypto is unavailable.
 */
export class Sha256Stream {
  #ctx: Deno.PointerValue;
  #pending: Promise<number> | null = null;
  /** The chunk being hashed, kept alive while the other thread reads it. */
  #chunk: Uint8Array | null = null;

  private constructor(ctx: Deno.PointerValue) {
    this.#ctx = ctx;
  }

  /** A new hash, or null without libcrypto (use node:crypto then). */
  static create(): Sha256Stream | null {
    if (!lib) return null;
    const ctx = lib.symbols.EVP_MD_CTX_new();
    if (!ctx) throw new Error("libcrypto: EVP_MD_CTX_new failed");
    if (lib.symbols.EVP_DigestInit_ex(ctx, lib.symbols.EVP_sha256(), null) !== 1) {
      lib.symbols.EVP_MD_CTX_free(ctx);
      throw new Error("libcrypto: EVP_DigestInit_ex(sha256) failed");
    }
    return new Sha256Stream(ctx);
  }

  /** Hashes `chunk` on another thread; resolves once it has been read. One update at a time. */
  async update(chunk: Uint8Array): Promise<void> {
    if (this.#pending) throw new Error("Sha256Stream: an update is still running");
    this.#chunk = chunk;
    this.#pending = lib!.symbols.EVP_DigestUpdate(this.#ctx, chunk, BigInt(chunk.length));
    try {
      if (await this.#pending !== 1) throw new Error("libcrypto: EVP_DigestUpdate failed");
    } finally {
      this.#pending = null;
      this.#chunk = null;
    }
  }

  /** The digest as lower-case hex; frees the context. */
  hex(): string {
    const out = new Uint8Array(32);
    const ok = lib!.symbols.EVP_DigestFinal_ex(this.#ctx, out, null) === 1;
    this.free();
    if (!ok) throw new Error("libcrypto: EVP_DigestFinal_ex failed");
    return Array.from(out, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Frees the context, once any running update has resolved. Safe to call twice. */
  free(): void {
    if (this.#ctx === null) return;
    if (this.#pending) {
      this.#pending.finally(() => this.free()).catch(() => {});
      return;
    }
    lib!.symbols.EVP_MD_CTX_free(this.#ctx);
    this.#ctx = null;
  }
}
