import { z } from "zod";
import { formatIssues } from "#common/zod-issues.ts";
import { cpuSecondsOfAll, ownCpuSeconds } from "./process-cpu.ts";

/**
 * The benchmark frame: every benchmark measures the project and a baseline in the same run, in alternating
 * order round after round so machine noise spreads over both, and reports the median of the rounds.
 */

export interface BenchConfig {
  rounds: number;
  durationS: number;
  warmUpS: number;
  connections: number;
}

/** One measurement of one side: `value` in the benchmark's figure (higher is better). */
export interface Sample {
  value: number;
  p50Ms?: number | undefined;
  p99Ms?: number | undefined;
  /**
   * CPU seconds of a load generator in its own process (wrk.ts); without it the generator is the bench process
   * itself, and the frame counts that process's CPU.
   */
  generatorCpuS?: number | undefined;
  /** Filled in by the frame: the generator's and the server's CPU in cores (CPU seconds per second). */
  generatorCores?: number | undefined;
  serverCores?: number | undefined;
  /** The generator used more than half a core more than the server: the server may not be the limit. */
  unreliable?: boolean | undefined;
}

/** A generator using this many cores more than the server makes a round unreliable (issue 18). */
export const UNRELIABLE_MARGIN_CORES = 0.5;

export interface Side {
  label: string;
  /** Load for `durationS` seconds; throws when any request failed, so a broken side gives no figure. */
  measure(durationS: number): Promise<Sample>;
  /** The processes serving this side, whose CPU the frame reports beside the generator's. */
  pids?: () => readonly number[];
}

export interface BenchContext {
  config: BenchConfig;
  /** Registers a cleanup; all run in reverse order once the benchmark ends, failed or not. */
  defer(cleanup: () => unknown): void;
}

/** What a benchmark should reach: its ratio at least `ratio`, and the project's median p99 under `p99Ms`. */
export interface Goal {
  ratio: number;
  p99Ms?: number;
}

/**
 * A benchmark states its goal in its description, in one form the report reads: `goal ratio >= 0.4`, optionally
 * followed by `and p99 < 10 ms`.
 */
export function goalOf(description: string): Goal | undefined {
  const m = /goal ratio >= ([\d.]+)(?: and p99 < ([\d.]+) ms)?/.exec(description);
  if (!m) return undefined;
  return { ratio: Number(m[1]), ...(m[2] ? { p99Ms: Number(m[2]) } : {}) };
}

export interface Benchmark {
  name: string;
  /** What `Sample.value` counts, e.g. "req/s". */
  figure: string;
  /** What it measures, and its goal (`goalOf`). */
  description: string;
  start(ctx: BenchContext): Promise<BenchSides>;
}

export interface BenchSides {
  project: Side;
  baseline: Side;
  /** Further sides measured in the same rounds and reported against the baseline (e.g. a second baseline). */
  extras?: Side[];
}

export interface SideResult {
  label: string;
  rounds: Sample[];
  median: number;
  p50MsMedian?: number | undefined;
  p99MsMedian?: number | undefined;
  /** Median cores used by the load generator and by the server (when the side names its processes). */
  generatorCoresMedian?: number | undefined;
  serverCoresMedian?: number | undefined;
  /** Rounds flagged unreliable (`Sample.unreliable`). */
  unreliableRounds: number;
}

export interface BenchResult {
  name: string;
  figure: string;
  description: string;
  project: SideResult;
  baseline: SideResult;
  /** project median / baseline median */
  ratio: number;
  /** The benchmark's extra sides, each with its median / baseline median. */
  extras?: Array<SideResult & { ratio: number }>;
  goal?: Goal;
  /** Whether the goal was reached (undefined without a goal). */
  met?: boolean;
}

const settingsSchema = z.object({
  BENCH_ROUNDS: z.coerce.number().int().min(1).max(100).default(5),
  BENCH_DURATION_S: z.coerce.number().positive().max(3600).default(5),
  BENCH_CONNECTIONS: z.coerce.number().int().min(1).max(10_000).default(50),
});

export function benchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      `bench settings: ${formatIssues(parsed.error.issues, { schema: settingsSchema }).join("; ")}`,
    );
  }
  const s = parsed.data;
  return {
    rounds: s.BENCH_ROUNDS,
    durationS: s.BENCH_DURATION_S,
    warmUpS: Math.min(2, s.BENCH_DURATION_S),
    connections: s.BENCH_CONNECTIONS,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] as number;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] as number) + hi) / 2;
}

function medianOf(
  samples: readonly Sample[],
  key: "p50Ms" | "p99Ms" | "generatorCores" | "serverCores",
): number | undefined {
  const values = samples.map((s) => s[key]).filter((v): v is number => v !== undefined);
  return values.length === samples.length ? median(values) : undefined;
}

function summarise(label: string, rounds: Sample[]): SideResult {
  return {
    label,
    rounds,
    median: median(rounds.map((s) => s.value)),
    p50MsMedian: medianOf(rounds, "p50Ms"),
    p99MsMedian: medianOf(rounds, "p99Ms"),
    generatorCoresMedian: medianOf(rounds, "generatorCores"),
    serverCoresMedian: medianOf(rounds, "serverCores"),
    unreliableRounds: rounds.filter((s) => s.unreliable).length,
  };
}

/**
 * One measurement with the CPU around it: the generator's (wrk's own count, or this process's) and the side's
 * server processes', each in cores over the measurement's wall time.
 */
export async function measureWithCpu(side: Side, durationS: number): Promise<Sample> {
  const pids = side.pids?.() ?? [];
  const server0 = pids.length > 0 ? await cpuSecondsOfAll(pids) : 0;
  const own0 = ownCpuSeconds();
  const t0 = performance.now();
  const sample = await side.measure(durationS);
  const wall = (performance.now() - t0) / 1000;
  const generator = sample.generatorCpuS ?? ownCpuSeconds() - own0;
  const generatorCores = generator / wall;
  const serverCores = pids.length > 0 ? ((await cpuSecondsOfAll(pids)) - server0) / wall : undefined;
  return {
    ...sample,
    generatorCores: round2(generatorCores),
    serverCores: serverCores === undefined ? undefined : round2(serverCores),
    unreliable: serverCores !== undefined && generatorCores - serverCores > UNRELIABLE_MARGIN_CORES,
  };
}

const round2 = (v: number) => Math.round(v * 100) / 100;

export function formatValue(v: number): string {
  return Math.abs(v) >= 100 ? Math.round(v).toString() : v.toPrecision(3);
}

function progress(bench: Benchmark, step: string, side: Side, s: Sample): void {
  const latency = s.p50Ms !== undefined ? `  p50 ${s.p50Ms} ms  p99 ${s.p99Ms} ms` : "";
  const cpu =
    `  generator ${s.generatorCores} cores` +
    (s.serverCores !== undefined ? `, server ${s.serverCores}` : "") +
    (s.unreliable ? "  UNRELIABLE (the generator may be the limit)" : "");
  console.error(
    `${bench.name}  ${step}  ${side.label}: ${formatValue(s.value)} ${bench.figure}${latency}${cpu}`,
  );
}

/**
 * Warm-up of each side, then `rounds` rounds of all sides. With project and baseline only, the project goes
 * first in odd rounds and the baseline in even; extra sides take their turn in the same rotation.
 */
export async function runBenchmark(bench: Benchmark, config: BenchConfig): Promise<BenchResult> {
  const cleanups: (() => unknown)[] = [];
  try {
    const sides = await bench.start({ config, defer: (c) => cleanups.push(c) });
    const all = [sides.project, sides.baseline, ...(sides.extras ?? [])];
    for (const side of all) {
      progress(bench, "warm-up", side, await measureWithCpu(side, config.warmUpS));
    }
    const samples: Sample[][] = all.map(() => []);
    for (let round = 0; round < config.rounds; round++) {
      for (let k = 0; k < all.length; k++) {
        const i = (round + k) % all.length;
        const side = all[i] as Side;
        const sample = await measureWithCpu(side, config.durationS);
        samples[i]?.push(sample);
        progress(bench, `round ${round + 1}/${config.rounds}`, side, sample);
      }
    }
    const [p, b, ...extras] = all.map((side, i) => summarise(side.label, samples[i] ?? []));
    const project = p as SideResult;
    const baseline = b as SideResult;
    const ratio = project.median / baseline.median;
    const goal = goalOf(bench.description);
    return {
      name: bench.name,
      figure: bench.figure,
      description: bench.description,
      project,
      baseline,
      ratio,
      ...(goal
        ? {
            goal,
            met:
              ratio >= goal.ratio &&
              (goal.p99Ms === undefined ||
                (project.p99MsMedian !== undefined && project.p99MsMedian < goal.p99Ms)),
          }
        : {}),
      ...(extras.length > 0
        ? {
            extras: extras.map((e) => ({
              ...(e as SideResult),
              ratio: (e as SideResult).median / baseline.median,
            })),
          }
        : {}),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        console.error(`${bench.name}: cleanup failed: ${(err as Error).message}`);
      }
    }
  }
}
