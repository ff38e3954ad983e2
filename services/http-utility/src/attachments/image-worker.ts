import { Worker } from "node:worker_threads";
import {
  type EncodedImage,
  ImageError,
  type ImageErrorCode,
  type ImageSettings,
  type Images,
  type ProcessedImage,
  type Thumbnail,
} from "./images.ts";

/**
 * images.ts on a worker thread. An image is decoded once into raw pixels (megabytes per upload) held by
 * JavaScript buffers; on the main thread they count against V8's external-memory limit and bring full
 * collections of the service's whole heap (Express, the OpenAPI document, pools…) every few uploads, which
 * pause every request. On a worker, the pixels live and die in a small heap of their own, and the main
 * thread receives only the encoded files (copied: a fraction of the pixels).
 */

type Pending = { resolve: (value: never) => void; reject: (err: Error) => void };

export function createImagesOnWorker(settings: ImageSettings): Images & { close(): Promise<void> } {
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, Pending>();

  function start(): Worker {
    if (worker) return worker;
    const w = new Worker(new URL("./image-worker-thread.ts", import.meta.url), { workerData: settings });
    w.unref();
    w.on(
      "message",
      (m: { id: number; result?: unknown; error?: { image: boolean; code?: string; message: string } }) => {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (m.error) {
          p.reject(
            m.error.image
              ? new ImageError(m.error.code as ImageErrorCode, m.error.message)
              : new Error(m.error.message),
          );
        } else {
          p.resolve(m.result as never);
        }
      },
    );
    const fail = (err: Error) => {
      if (worker === w) worker = undefined;
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    };
    w.on("error", fail);
    w.on("exit", (code) => fail(new Error(`the image worker exited (${code})`)));
    worker = w;
    return w;
  }

  function call<T>(op: string, input: string | Buffer, kind?: string): Promise<T> {
    const w = start();
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: never) => void, reject });
      w.ref(); // busy: the process waits for the answer
      w.postMessage({ id, op, input, kind });
    }).finally(() => {
      if (pending.size === 0) worker?.unref();
    });
  }

  const asBuffer = <T extends EncodedImage>(i: T): T => ({
    ...i,
    data: Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength),
  });

  return {
    async process(input, kind) {
      const r = await call<ProcessedImage>("process", input, kind);
      return { ...r, original: asBuffer(r.original), thumbnails: r.thumbnails.map(asBuffer) };
    },
    async thumbnailsOf(frame, kind) {
      return (await call<Thumbnail[]>("thumbnailsOf", frame, kind)).map(asBuffer);
    },
    async close() {
      await worker?.terminate();
      worker = undefined;
    },
  };
}
