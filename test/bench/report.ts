import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { projectRoot } from "#common/paths.ts";
import { type BenchConfig, type BenchResult, formatValue, type SideResult } from "./frame.ts";

export const RESULTS_FILE = path.join(projectRoot, "bench", "results.json");

export interface BenchFailure {
  name: string;
  error: string;
}

const core = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(2));
const cores = (p: number | undefined, b: number | undefined) => `${core(p)} / ${core(b)}`;
/** Unreliable rounds of each side, out of the rounds: `0/5` when none. */
const unreliable = (p: SideResult, b: SideResult) =>
  `${p.unreliableRounds}/${p.rounds.length} / ${b.unreliableRounds}/${b.rounds.length}`;

/** `>= 0.4 ✔`, with the p99 bound when there is one; empty without a goal. */
function goalOf(r: BenchResult): string {
  if (!r.goal) return "";
  const p99 =
    r.goal.p99Ms !== undefined ? `, p99 < ${r.goal.p99Ms} ms (${r.project.p99MsMedian ?? "?"})` : "";
  return `>= ${r.goal.ratio}${p99} ${r.met ? "✔" : "✘"}`;
}

/** The results as a pipe-separated table, one row per benchmark. */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = [
    [
      "benchmark",
      "figure",
      "project median",
      "baseline median",
      "ratio",
      "goal",
      "project rounds",
      "baseline rounds",
      "generator cores (p / b)",
      "server cores (p / b)",
      "unreliable rounds",
    ],
    ...results.flatMap((r) => [
      [
        r.name,
        r.figure,
        formatValue(r.project.median),
        formatValue(r.baseline.median),
        r.ratio.toFixed(2),
        goalOf(r),
        r.project.rounds.map((s) => formatValue(s.value)).join(" "),
        r.baseline.rounds.map((s) => formatValue(s.value)).join(" "),
        cores(r.project.generatorCoresMedian, r.baseline.generatorCoresMedian),
        cores(r.project.serverCoresMedian, r.baseline.serverCoresMedian),
        unreliable(r.project, r.baseline),
      ],
      // an extra side in the project's columns, against the same baseline
      ...(r.extras ?? []).map((e) => [
        `${r.name} (extra: ${e.label})`,
        r.figure,
        formatValue(e.median),
        formatValue(r.baseline.median),
        e.ratio.toFixed(2),
        "",
        e.rounds.map((s) => formatValue(s.value)).join(" "),
        r.baseline.rounds.map((s) => formatValue(s.value)).join(" "),
        cores(e.generatorCoresMedian, r.baseline.generatorCoresMedian),
        cores(e.serverCoresMedian, r.baseline.serverCoresMedian),
        unreliable(e, r.baseline),
      ]),
    ]),
  ];
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? "").length))) ?? [];
  const line = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join(" | ")} |`;
  const rule = `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`;
  const [header, ...body] = rows;
  return [line(header ?? []), rule, ...body.map(line)].join("\n");
}

export async function writeResults(
  config: BenchConfig,
  results: readonly BenchResult[],
  failures: readonly BenchFailure[],
): Promise<string> {
  const cpus = os.cpus();
  const report = {
    date: new Date().toISOString(),
    machine: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cpus: cpus.length,
      cpuModel: cpus[0]?.model,
      memoryGB: Math.round(os.totalmem() / 2 ** 30),
      loadAverage: os.loadavg(),
    },
    settings: config,
    benchmarks: results,
    failures,
  };
  await mkdir(path.dirname(RESULTS_FILE), { recursive: true });
  await writeFile(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);
  return RESULTS_FILE;
}
