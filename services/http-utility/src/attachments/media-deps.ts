import type { Config } from "#common/config/schema.ts";
import type { Logger } from "#common/logger.ts";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { queuedImages } from "./image-queue.ts";
import { createImagesOnWorker } from "./image-worker.ts";
import type { Images } from "./images.ts";
import { createPosterMaker } from "./video-poster.ts";

/** What the attachment routes need, built from `media` config: the composition root's part for media. */
export interface MediaDeps {
  storage: Storage;
  images: Images;
  posters: ReturnType<typeof createPosterMaker>;
}

export async function createMediaDeps(config: Pick<Config, "media">, log: Logger): Promise<MediaDeps> {
  return {
    storage: await createStorage(config.media.storage, { log }),
    images: queuedImages(createImagesOnWorker(config.media.images), config.media.images),
    posters: createPosterMaker({ ffmpeg: config.media.ffmpeg, log, limits: config.media.posters }),
  };
}
