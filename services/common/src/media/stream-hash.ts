import { Worker } from "node:worker_threads";

/**
 * SHA-256 of a stream, computed on a worker thread. Hashing costs about 0.75 s of CPU per GiB here, which
 * on the event loop would be half of a large upload's time and would stall every other request meanwhile;
 * on a worker it overlaps the receiving and the writing. Data goes over in 1 MiB buffers that travel to the
 * worker and back (transferred, never copied between threads; the copy into a buffer costs far less than the
 * hash; nothing is allocated per batch, so neither thread piles up garbage). A SharedArrayBuffer would save
 * the trip back, but V8 copies into shared memory element by element: three times slower than the hash.
 * `update` answers a promise to wait on when all 4 buffers are with the worker, which is how an upload's
 * stream slows down instead of queueing memory.
 */

const BATCH = 1024 * 1024;
const SLOTS = 4;

// CommonJS, evaluated in the worker: one incremental hash per id
const WORKER = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hashes = new Map();
parentPort.on("message", (m) => {
  if (m.abort) { hashes.delete(m.id); return; }
  let h = hashes.get(m.id);
  if (!h) { h = createHash("sha256"); hashes.set(m.id, h); }
  if (m.data) {
    h.update(new Uint8Array(m.data, 0, m.length));
    parentPort.postMessage({ id: m.id, data: m.data }, [m.data]);
  }
  if (m.end) { hashes.delete(m.id); parentPort.postMessage({ id: m.id, digest: h.digest("hex") }); }
});
`;

interface Waiter {
  onAck: (buffer: ArrayBuffer) => void;
  onDigest: (hex: string) => void;
  onError: (err: Error) => void;
}

let worker: Worker | undefined;
let nextId = 1;
const waiters = new Map<number, Waiter>();

function hashWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER, { eval: true, name: "sha256" });
  w.unref(); // never what keeps a process alive
  w.on("message", (m: { id: number; data?: ArrayBuffer; digest?: string }) => {
    const waiter = waiters.get(m.id);
    if (m.data) waiter?.onAck(m.data);
    if (m.digest !== undefined) waiter?.onDigest(m.digest);
  });
  const fail = (err: Error) => {
    if (worker === w) worker = undefined;
    for (const waiter of waiters.values()) waiter.onError(err);
    waiters.clear();
  };
  w.on("error", fail);
  w.on("exit", (code) => fail(new Error(`the hashing worker exited (${code})`)));
  worker = w;
  return w;
}

export class StreamHash {
  readonly #id = nextId++;
  readonly #worker = hashWorker();
  readonly #free: ArrayBuffer[] = Array.from({ length: SLOTS - 1 }, () => new ArrayBuffer(BATCH));
  #batch: Buffer = Buffer.from(new ArrayBuffer(BATCH));
  #filled = 0;
  #resume: (() => void) | undefined;
  #failed: Error | undefined;
  #digest: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;

  constructor() {
    waiters.set(this.#id, {
      onAck: (buffer) => {
        this.#free.push(buffer);
        const resume = this.#resume;
        this.#resume = undefined;
        resume?.();
      },
      onDigest: (hex) => {
        waiters.delete(this.#id);
        this.#digest?.resolve(hex);
      },
      onError: (err) => {
        this.#failed = err;
        this.#resume?.();
        this.#digest?.reject(err);
      },
    });
  }

  /** Adds bytes; answers a promise when the caller should wait before sending more. */
  update(chunk: Buffer): Promise<void> | undefined {
    if (this.#failed) return Promise.reject(this.#failed);
    const n = chunk.copy(this.#batch, this.#filled);
    this.#filled += n;
    if (this.#filled < BATCH) return undefined;
    this.#send();
    const rest = chunk.subarray(n);
    // a buffer is free: carry on (a chunk larger than a buffer goes round)
    if (this.#take()) return rest.length > 0 ? this.update(rest) : undefined;
    return new Promise((resolve, reject) => {
      this.#resume = () => {
        if (this.#failed) {
          reject(this.#failed);
          return;
        }
        this.#take();
        resolve(rest.length > 0 ? this.update(rest) : undefined);
      };
    });
  }

  /** The hex digest of everything added. */
  digest(): Promise<string> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#digest = { resolve, reject };
      if (this.#filled > 0) this.#send();
      this.#worker.postMessage({ id: this.#id, end: true });
    });
  }

  /** Forgets a hash that will not be finished (a failed upload). */
  abort(): void {
    waiters.delete(this.#id);
    this.#worker.postMessage({ id: this.#id, abort: true });
  }

  /** Hands the current buffer to the worker. */
  #send() {
    const data = this.#batch.buffer as ArrayBuffer;
    this.#worker.postMessage({ id: this.#id, data, length: this.#filled }, [data]);
    this.#filled = 0;
  }

  /** Takes a free buffer to fill next, if there is one. */
  #take(): boolean {
    const buffer = this.#free.pop();
    if (buffer === undefined) return false;
    this.#batch = Buffer.from(buffer);
    return true;
  }
}
