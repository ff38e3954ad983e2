import { errors } from "../errors.ts";
import type { Images } from "./images.ts";
import { createSlots, type SlotLimits, type Slots } from "./slots.ts";

/**
 * The images of every request of this process, decoded `slots` at a time with `queue` more waiting: memory
 * is bounded by the slots (each decode holds at most `media.images.maxStoredPixels` of pixels), not by the
 * number of uploads arriving at once. Beyond the queue an image is refused with 503 and Retry-After.
 */

/** Seconds a refused client waits: a queue of a few images drains in about this long on two cores. */
export const BUSY_RETRY_AFTER_S = 5;

export function queuedImages(images: Images, limits: SlotLimits): Images & { slots: Slots } {
  const slots = createSlots(limits);
  async function inSlot<T>(work: () => Promise<T>): Promise<T> {
    const outcome = await slots.run(work);
    if (!outcome.ran) throw errors.imagesBusy(BUSY_RETRY_AFTER_S);
    return outcome.value;
  }
  return {
    process: (input, kind) => inSlot(() => images.process(input, kind)),
    thumbnailsOf: (frame, kind) => inSlot(() => images.thumbnailsOf(frame, kind)),
    slots,
  };
}
