/**
 * `bootcfs digest`: fs-verity digests of files, printed exactly as `fsverity digest` prints them.
 *
 * @module
 */
import type { CommandBody } from "../cli/command.ts";
import { UsageError } from "../error/mod.ts";
import { digestFileSync, type HashAlg, toHex } from "../fsverity/mod.ts";

/** The `digest` command. */
export const digestCommand: CommandBody = {
  usage: "[--hash sha256|sha512] FILE…",
  description: "Computes the fs-verity digest (4 KiB blocks, no salt) of each FILE in userspace; " +
    "the kernel does not need fs-verity support. Output: `ALG:HEX FILE`, one line per file.",
  options: {
    hash: { type: "string", value: "ALG", default: "sha256", help: "hash algorithm: sha256 or sha512" },
    json: { type: "boolean", help: "print a JSON array of {path, algorithm, digest}" },
  },
  run(ctx, args) {
    const alg = args.values.hash as string;
    if (alg !== "sha256" && alg !== "sha512") throw new UsageError(`--hash must be sha256 or sha512, not '${alg}'`);
    if (args.positionals.length === 0) throw new UsageError("no FILE given");
    const results = [];
    for (const path of args.positionals) {
      const digest = toHex(digestFileSync(path, alg as HashAlg));
      if (args.values.json) results.push({ path, algorithm: alg, digest });
      else ctx.out.line(`${alg}:${digest} ${path}`);
    }
    if (args.values.json) ctx.out.json(results);
  },
};
