import os from "node:os";
import { median, type Sample, type Side } from "./frame.ts";
import type { PushFakes } from "./push-fakes.ts";
import type { FakesTaken } from "./push-fakes-process.ts";

/**
 * One measurement of a push fan-out side: `count` notifications, `inFlight` at a time (a new one starts as
 * one ends), every one of them checked; `value` is notifications per second from the first start to the
 * last end, p50/p99 the latency of one notification. The frame's duration is not used: a fan-out is a
 * fixed amount of work.
 */

export interface FanOutSample extends Sample {
  elapsedS: number;
  /** CPU of the bench process (the client side) per notification, µs. */
  clientCpuUs: number;
  /** CPU of the fakes' process per notification, µs. */
  fakeCpuUs: number;
  /** The rest of the machine's CPU per notification (PostgreSQL mostly), µs. */
  otherCpuUs: number;
  /** The machine's CPUs busy during the fan-out, % of all of them (PostgreSQL included). */
  machineBusyPct: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const round1 = (v: number) => Math.round(v * 10) / 10;

function summarize(r: { elapsedS: number; latencies: Float64Array }) {
  const sorted = r.latencies.slice().sort();
  return {
    elapsedS: r.elapsedS,
    p50Ms: round1(percentile(sorted, 50)),
    p99Ms: round1(percentile(sorted, 99)),
  };
}

export async function fanOut(
  count: number,
  inFlight: number,
  send: (i: number) => Promise<void>,
): Promise<{ elapsedS: number; p50Ms: number; p99Ms: number }> {
  const latencies = new Float64Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await send(i);
      latencies[i] = performance.now() - t0;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  const elapsedS = (performance.now() - start) / 1000;
  latencies.sort();
  return { elapsedS, p50Ms: round1(percentile(latencies, 50)), p99Ms: round1(percentile(latencies, 99)) };
}

/** CPU time of all the machine's CPUs since boot, ms. */
function machineTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    idle += cpu.times.idle;
    total += cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.idle + cpu.times.irq;
  }
  return { idle, total };
}

export interface FanOutSideOptions {
  label: string;
  count: number;
  inFlight: number;
  fakes: PushFakes;
  /** One notification, the i-th token; rejects (or throws) when it was not delivered. */
  send?(i: number): Promise<void>;
  /** Or the whole fan-out at once (the notifier's `toTokens`), with each notification's latency. */
  fanOut?(count: number, inFlight: number): Promise<{ elapsedS: number; latencies: Float64Array }>;
  /** What the fakes must have seen: undefined when right, else the problem. */
  check(taken: FakesTaken): string | undefined;
  /** Every measurement of this side, the warm-up first. */
  samples: FanOutSample[];
}

export function fanOutSide(o: FanOutSideOptions): Side {
  return {
    label: o.label,
    async measure() {
      await o.fakes.take(); // what came before is not this measurement's
      const cpu = process.cpuUsage();
      const machine = machineTimes();
      const r = o.fanOut
        ? summarize(await o.fanOut(o.count, o.inFlight))
        : await fanOut(o.count, o.inFlight, o.send as (i: number) => Promise<void>);
      const used = process.cpuUsage(cpu);
      const after = machineTimes();
      const taken = await o.fakes.take();
      const problem = o.check(taken);
      if (problem) throw new Error(`${o.label}: ${problem}`);
      const idle = after.idle - machine.idle;
      const total = after.total - machine.total;
      const clientCpuUs = (used.user + used.system) / o.count;
      const fakeCpuUs = (taken.cpuMs * 1000) / o.count;
      const sample: FanOutSample = {
        value: o.count / r.elapsedS,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        elapsedS: r.elapsedS,
        clientCpuUs: Math.round(clientCpuUs),
        fakeCpuUs: Math.round(fakeCpuUs),
        otherCpuUs: Math.max(0, Math.round(((total - idle) * 1000) / o.count - clientCpuUs - fakeCpuUs)),
        machineBusyPct: Math.round((100 * (total - idle)) / total),
      };
      o.samples.push(sample);
      return sample;
    },
  };
}

const spread = (values: number[], digits: number) =>
  `${median(values).toFixed(digits)} (${values.map((v) => v.toFixed(digits)).join(" ")})`;

/** The figures the table does not show, per side, the warm-up left out: medians and the rounds. */
export function fanOutSummary(name: string, sides: { label: string; samples: FanOutSample[] }[]): string {
  const rows: [string, (s: FanOutSample) => number, number][] = [
    ["notifications/s", (s) => s.value, 0],
    ["p50 ms", (s) => s.p50Ms ?? 0, 1],
    ["p99 ms", (s) => s.p99Ms ?? 0, 1],
    ["client CPU µs/notif.", (s) => s.clientCpuUs, 0],
    ["fakes CPU µs/notif.", (s) => s.fakeCpuUs, 0],
    ["other CPU µs/notif.", (s) => s.otherCpuUs, 0],
    ["machine CPU busy %", (s) => s.machineBusyPct, 0],
  ];
  const lines = [`${name} summary (medians of the rounds, the rounds in brackets; warm-up left out)`];
  for (const side of sides) {
    const rounds = side.samples.slice(1);
    if (rounds.length === 0) continue;
    lines.push(`  ${side.label}`);
    for (const [what, f, digits] of rows)
      lines.push(`    ${what.padEnd(22)} ${spread(rounds.map(f), digits)}`);
  }
  return lines.join("\n");
}
