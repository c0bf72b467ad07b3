/**
 * Option values several commands parse the same way.
 *
 * @module
 */
import { UsageError } from "../error/mod.ts";
import { parsePlatform, type Platform } from "../oci/manifest.ts";

/** `--platform OS/ARCH[/VARIANT]`, or undefined when not given; a malformed value is a usage error. */
export function platformOption(value: unknown): Platform | undefined {
  if (!value) return undefined;
  try {
    return parsePlatform(value as string);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
