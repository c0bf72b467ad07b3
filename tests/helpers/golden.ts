/**
 * The backing objects of the golden C images in `vectors/erofs/` (README §5), which are not stored
 * there: each is `gen(size, seed)`.
 *
 * @module
 */
import { gen } from "./oci.ts";

/** Object path (`xx/<62 hex>`, as in `objects.txt`) → how to generate its content. */
export const GOLDEN_OBJECTS: ReadonlyArray<{ path: string; size: number; seed: string }> = [
  { path: "22/51df38a54e597803a647fccc5f41f4dfecf78ffcdb6e9bc6bdf173a0f98335", size: 65536, seed: "s64k" },
  { path: "8a/7feedcf9f8ce39e02fae18869cf99a1a7e6f8004e71ebdce56836c683569db", size: 4095, seed: "s4095" },
  { path: "8b/65d18d27defe31cd55774d4536adb10cdd2b27b9783080b5757a8e51ff4d2d", size: 1048577, seed: "s1m1" },
  { path: "9c/b190c63406a8c64217b19b71e095b0dd3164c37d527bcff654833227cdf8a7", size: 1048576, seed: "s1m" },
  { path: "f1/deca72eb85bdde74ae3c64510a2eff1f44197402dff142f993de1db2a91513", size: 4096, seed: "s4096" },
  { path: "f7/9d6b9233303b86b8d0b93fd0ded98fb1fd77b345cfa0b3ea255dab25acd019", size: 65, seed: "s65" },
];

/**
 * Writes the golden objects into `dir` as `dir/xx/yyyy…` (the layout of a repository's `objects/`
 * and of a `mount.composefs` basedir). `except` leaves some out, to test missing objects.
 */
export async function writeGoldenObjects(dir: string, except: string[] = []): Promise<void> {
  for (const o of GOLDEN_OBJECTS) {
    if (except.includes(o.path)) continue;
    await Deno.mkdir(`${dir}/${o.path.slice(0, 2)}`, { recursive: true });
    await Deno.writeFile(`${dir}/${o.path}`, gen(o.size, o.seed));
  }
}
