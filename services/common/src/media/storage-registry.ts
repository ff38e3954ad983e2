import type { MediaConfig } from "../config/media-schema.ts";
import type { Logger } from "../logger.ts";
import { createRegistry } from "../plugins/registry.ts";
import fs from "./fs-storage.ts";
import s3 from "./s3-storage.ts";
import { type Storage, storagePoint } from "./storage.ts";

/** The storage backends by kind (`media.storage.kind`): the one list of them. */
export const storageKinds = createRegistry(storagePoint, [fs, s3]);

/**
 * The configured backend. Every problem (an unknown kind, bad options) is a StartupProblems naming its key
 * under `media.storage`; with `log`, the start log says which capabilities the backend lacks and what that
 * costs.
 */
export async function createStorage(
  config: MediaConfig["storage"],
  o: { log?: Logger } = {},
): Promise<Storage> {
  return storageKinds.create("media.storage", config, {}, o.log);
}
