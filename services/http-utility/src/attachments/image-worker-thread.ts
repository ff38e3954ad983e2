import { parentPort, workerData } from "node:worker_threads";
import { createImages, ImageError, type ImageSettings } from "./images.ts";

/** The worker side of image-worker.ts: images.ts on its own thread and heap. */

const images = createImages(workerData as ImageSettings);
const port = parentPort;
if (!port) throw new Error("image-worker-thread.ts runs as a worker thread only");

interface Request {
  id: number;
  op: "process" | "thumbnailsOf";
  input: string | Uint8Array;
  kind?: "picture" | "avatar";
}

port.on("message", async (m: Request) => {
  try {
    const input =
      typeof m.input === "string"
        ? m.input
        : Buffer.from(m.input.buffer, m.input.byteOffset, m.input.byteLength);
    if (m.op === "process") {
      const result = await images.process(input, m.kind ?? "picture");
      // copied, not transferred: sharp's buffers wrap libvips memory, which cannot change threads
      port.postMessage({ id: m.id, result });
    } else {
      if (typeof input === "string") throw new Error("thumbnailsOf takes a frame, not a path");
      const result = await images.thumbnailsOf(input, m.kind ?? "picture");
      port.postMessage({ id: m.id, result });
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    port.postMessage({
      id: m.id,
      error: { image: err instanceof ImageError, code: e.code, message: e.message ?? String(err) },
    });
  }
});
