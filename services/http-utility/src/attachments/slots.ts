/**
 * A counting semaphore with a bounded queue, per process: at most `slots` jobs run at once, at most `queue`
 * wait, and a job beyond both is not run at all. Image decoding and ffmpeg each get one, so a burst of
 * uploads waits (briefly, in bounded number) or is turned away instead of piling up memory and CPU.
 */

export interface SlotLimits {
  slots: number;
  queue: number;
}

export type SlotOutcome<T> = { ran: true; value: T } | { ran: false };

export interface Slots {
  /** Runs `work` in a slot, after waiting in the queue if need be; `{ ran: false }` when the queue is full. */
  run<T>(work: () => Promise<T>): Promise<SlotOutcome<T>>;
  /** jobs running and waiting now (metrics, tests) */
  readonly running: number;
  readonly waiting: number;
}

export function createSlots(limits: SlotLimits): Slots {
  let running = 0;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(work: () => Promise<T>): Promise<SlotOutcome<T>> {
      if (running >= limits.slots) {
        if (waiting.length >= limits.queue) return { ran: false };
        // the finishing job hands its slot over (running stays as it is), so no newcomer can overtake
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        running++;
      }
      try {
        return { ran: true, value: await work() };
      } finally {
        const next = waiting.shift();
        if (next) next();
        else running--;
      }
    },
    get running() {
      return running;
    },
    get waiting() {
      return waiting.length;
    },
  };
}
