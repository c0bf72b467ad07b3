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
