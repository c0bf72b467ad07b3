/**
 * `upgrade_repo` (oci-and-boot.md §7): bring every tagged image of a repository written by older
 * composefs-rs/bootc up to date. Old splitstream headers are read as they are; configs without the
 * repository's default-format EROFS ref get their images generated. Idempotent.
 *
 * Repositories without `meta.json` (before composefs-rs 0.7) get one first, before they are
 * opened: `upgradeLegacyLayout` in lib/repository, which the pull commands run.
 *
 * @module
 */
import { effectiveFormats, type Repository } from "../repository/mod.ts";
import { withContext } from "../error/mod.ts";
import { ensureComposefsErofs } from "./erofs_image.ts";
import { listTags, OciImage } from "./store.ts";

/** Counts of an upgrade run. */
export interface UpgradeResult {
  alreadyCurrent: number;
  upgraded: number;
  skippedNonContainer: number;
  /** Tags whose EROFS images were generated. */
  upgradedTags: string[];
}

/**
 * Generates the missing default-format EROFS image of every tagged container image (re-creating
 * its tag on the rewritten manifest). An image that cannot be opened aborts the run. Run `gc`
 * afterwards to drop the superseded config and manifest splitstreams (2 objects per image).
 */
export async function upgradeRepo(repo: Repository, log: (m: string) => void = () => {}): Promise<UpgradeResult> {
  const r: UpgradeResult = { alreadyCurrent: 0, upgraded: 0, skippedNonContainer: 0, upgradedTags: [] };
  const format = effectiveFormats(repo.meta).default;
  for (const { name, digest } of listTags(repo)) {
    await withContext(`upgrading image ${JSON.stringify(name)}`, async () => {
      const img = OciImage.open(repo, digest);
      if (!img.isContainer) r.skippedNonContainer++;
      else if (img.imageRef(format)) r.alreadyCurrent++;
      else {
        repo.checkWritable();
        log(`generating the V${format} EROFS image of ${name} (${digest}), written before bootcfs kept one`);
        await ensureComposefsErofs(repo, digest, img.manifestVerity, name);
        r.upgraded++;
        r.upgradedTags.push(name);
      }
    });
  }
  return r;
}
