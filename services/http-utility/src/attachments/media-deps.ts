import type { Config } from "../../../common/src/config/schema.ts";
import type { Logger } from "../../../common/src/logger.ts";
import { createStorage, type Storage } from "../../../common/src/media/storage.ts";
import { createImages } from "./images.ts";
import { createPosterMaker } from "./video-poster.ts";

/** What the attachment routes need, built from `media` config: the composition root's part for media. */
export interface MediaDeps {
  storage: Storage;
  images: ReturnType<typeof createImages>;
  posters: ReturnType<typeof createPosterMaker>;
}

export async function createMediaDeps(config: Pick<Config, "media">, log: Logger): Promise<MediaDeps> {
  return {
    storage: await createStorage(config.media.storage),
    images: createImages(config.media.images),
    posters: createPosterMaker({ ffmpeg: config.media.ffmpeg, log }),
  };
}
