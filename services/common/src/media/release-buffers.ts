import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * A long upload passes through in 64 KiB socket buffers that live outside V8's heap. V8 frees the ones
 * already written only when it collects garbage, and it starts a collection for such memory only once
 * 64 MiB more of it has piled up (its external-allocation soft limit): a 1 GiB upload would carry up to
 * 64 MiB of dead buffers. A young-generation collection (a scavenge: about 0.1 ms, no full-heap pause)
 * every 16 MiB frees them while they are young. Much more often, buffers still queued for the disk live
 * through two scavenges, move to the old generation and wait for a full collection: 4 MiB was worse. Measured by test/attachments.test.ts (RSS during 1 GiB).
 */

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as (options: { type: "minor" | "major" }) => void;

const EVERY = 16 * 1024 * 1024;

let since = 0;

/**
 * Counts the bytes every upload of the process streams, together, and collects the dead young buffers after
 * each 16 MiB of them. Counted per upload, many small uploads at once (XEP-0363 photos of 1 MiB) never reached
 * it, and their buffers piled up until V8 marked the whole heap instead, about every 40 MiB: a quarter of the
 * service's CPU went to marking, and 16 PUTs in flight ran at 210/s instead of 260/s
 * (test/bench/xep0363-put.bench.ts; 8 MiB was slower, 32 MiB no faster).
 */
export function releaseBuffers(bytes: number): void {
  since += bytes;
  if (since >= EVERY) {
    since = 0;
    gc({ type: "minor" });
  }
}
