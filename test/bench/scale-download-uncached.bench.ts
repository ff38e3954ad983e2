import type { Benchmark } from "./frame.ts";
import { CONNECTIONS, downloadSides } from "./scale-download.ts";

export const benchmark: Benchmark = {
  name: "scale-download-uncached",
  figure: "req/s",
  description:
    `GET of a real ~9 KB WebP thumbnail by wrk, ${CONNECTIONS} connections, http-utility (1 process) with the ` +
    "media cache off (media.cache.maxBytes 0: every request looks its row up): on a database of 1000000 " +
    "attachment rows vs on an empty one; goal ratio >= 0.8",
  start: (ctx) => downloadSides(ctx, { cache: { maxBytes: 0 } }),
};
