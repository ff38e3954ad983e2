import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { createUploadBudget, type UploadBudget } from "#common/media/upload-budget.ts";
import { createDownloads, type Downloads } from "./downloads.ts";
import { createFreeSpaceCheck, type FreeSpaceCheck } from "./free-space.ts";
import { createGeneratedAvatars, type GeneratedAvatars } from "./generated-avatars.ts";
import { queuedImages } from "./image-queue.ts";
import { createImagesOnWorker } from "./image-worker.ts";
import type { Images } from "./images.ts";
import { createLegacyFiles, type LegacyFiles } from "./legacy-files.ts";
import { createPosterMaker } from "./video-poster.ts";

/**
 * What the attachment routes need, built once from `media` config by the composition root: storage, the
 * image worker, video posters, the daily upload budget, the generated avatars (their cache and their
 * per-address limit), and the downloads with their one in-memory cache per process (the routes and the lean
 * path in front of Express read the same).
 */
export interface MediaDeps {
  storage: Storage;
  downloads: Downloads;
  /** Imported legacy files, read under `media.legacyRoot`. */
  legacy: LegacyFiles;
  images: Images;
  posters: ReturnType<typeof createPosterMaker>;
  budget: UploadBudget;
  /** `media.freeSpaceReserveBytes`: one reading of the free space for every upload route of the process. */
  freeSpace: FreeSpaceCheck;
  generated: GeneratedAvatars;
}

export async function createMediaDeps(ctx: {
  config: Pick<Config, "media" | "services">;
  log: Logger;
  pool: Pool;
}): Promise<MediaDeps> {
  const { config, log, pool } = ctx;
  const storage = await createStorage(config.media.storage, { log });
  const legacy = createLegacyFiles({ legacyRoot: config.media.legacyRoot, log });
  return {
    storage,
    legacy,
    downloads: createDownloads({ pool, storage, media: config.media, legacy }),
    images: queuedImages(createImagesOnWorker(config.media.images), config.media.images),
    posters: createPosterMaker({ ffmpeg: config.media.ffmpeg, log, limits: config.media.posters }),
    budget: createUploadBudget(pool, config.media.dailyUploadBytes),
    freeSpace: createFreeSpaceCheck(storage, config.media.freeSpaceReserveBytes, log),
    generated: createGeneratedAvatars({
      pool,
      media: config.media,
      perIp: config.services.httpUtility.rateLimits.generatedAvatarsPerIp,
    }),
  };
}
