import { Worker } from "node:worker_threads";

/**
 * SHA-256 of a stream, computed on a worker thread. Hashing costs about 0.75 s of CPU per GiB here, which
 * on the event loop would be half of a large upload's time and would stall every other request meanwhile;
 * on a worker it overlaps the receiving and the writing. Data goes over through a ring of 1 MiB slots in
 * memory shared with the worker (a copy costs far less than the hash; nothing is allocated per batch, so
 * neither thread piles up garbage): `update` answers a promise to wait on when every slot is taken, which is
 * how an upload's stream slows down instead of queueing memory.
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
  if (!h) { h = { hash: createHash("sha256"), ring: m.ring }; hashes.set(m.id, h); }
  if (m.length) {
    h.hash.update(new Uint8Array(h.ring, m.slot * ${BATCH}, m.length));
    parentPort.postMessage({ id: m.id, slot: m.slot });
  }
  if (m.end) { hashes.delete(m.id); parentPort.postMessage({ id: m.id, digest: h.hash.digest("hex") }); }
});
`;

interface Waiter {
  onAck: (slot: number) => void;
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
  w.on("message", (m: { id: number; slot?: number; digest?: string }) => {
    const waiter = waiters.get(m.id);
    if (m.slot !== undefined) waiter?.onAck(m.slot);
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
  readonly #ring = new SharedArrayBuffer(BATCH * SLOTS);
  readonly #free: number[] = Array.from({ length: SLOTS }, (_, i) => i);
  #slot = this.#free.pop() as number;
  #batch = Buffer.from(this.#ring, this.#slot * BATCH, BATCH);
  #filled = 0;
  #sentRing = false;
  #resume: (() => void) | undefined;
  #failed: Error | undefined;
  #digest: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;

  constructor() {
    waiters.set(this.#id, {
      onAck: (slot) => {
        this.#free.push(slot);
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
    // the next slot is free: carry on (a chunk is never larger than a slot in practice; if it is, go round)
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
      this.#worker.postMessage({ id: this.#id, ring: this.#sentRing ? undefined : this.#ring, end: true });
    });
  }

  /** Forgets a hash that will not be finished (a failed upload). */
  abort(): void {
    waiters.delete(this.#id);
    this.#worker.postMessage({ id: this.#id, abort: true });
  }

  /** Hands the current slot to the worker. */
  #send() {
    const ring = this.#sentRing ? undefined : this.#ring;
    this.#sentRing = true;
    this.#worker.postMessage({ id: this.#id, ring, slot: this.#slot, length: this.#filled });
    this.#slot = -1;
    this.#filled = 0;
  }

  /** Takes a free slot to fill next, if there is one. */
  #take(): boolean {
    const slot = this.#free.pop();
    if (slot === undefined) return false;
    this.#slot = slot;
    this.#batch = Buffer.from(this.#ring, slot * BATCH, BATCH);
    return true;
  }
}
