import { describe, expect, it } from "vitest";
import { createSlots } from "./slots.ts";

/** The semaphore in front of image decoding and ffmpeg: plain promises, no timers. */

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe("slots", () => {
  it("runs `slots` jobs at once, queues `queue` more, and turns the rest away without running them", async () => {
    const slots = createSlots({ slots: 2, queue: 1 });
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];
    const jobs = gates.map((g, i) =>
      slots.run(async () => {
        started.push(i);
        await g.opened;
        return i;
      }),
    );
    let ranFourth = false;
    const fourth = await slots.run(async () => {
      ranFourth = true;
    });
    expect(fourth).toEqual({ ran: false });
    expect(ranFourth).toBe(false);
    expect(started).toEqual([0, 1]);
    expect({ running: slots.running, waiting: slots.waiting }).toEqual({ running: 2, waiting: 1 });

    gates[0]?.open();
    await expect(jobs[0]).resolves.toEqual({ ran: true, value: 0 });
    await expect.poll(() => started).toEqual([0, 1, 2]);
    gates[1]?.open();
    gates[2]?.open();
    await Promise.all(jobs);
    expect({ running: slots.running, waiting: slots.waiting }).toEqual({ running: 0, waiting: 0 });
  });

  it("frees the slot of a job that fails", async () => {
    const slots = createSlots({ slots: 1, queue: 0 });
    await expect(slots.run(() => Promise.reject(new Error("broken")))).rejects.toThrow("broken");
    await expect(slots.run(async () => "next")).resolves.toEqual({ ran: true, value: "next" });
  });
});
