import { readdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { type BenchConfig, type Benchmark, type BenchResult, benchConfig, runBenchmark } from "./frame.ts";
import { type BenchFailure, formatTable, writeResults } from "./report.ts";

// `npm run bench [name…]`: every test/bench/*.bench.ts (or those whose file name contains a given name),
// one after the other. Not part of `npm test`: vitest only collects *.test.ts.

// exiting runs child-server.ts's exit hook, which stops the servers this run started
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`${signal}: stopping`);
    process.exit(1);
  });
}

let config: BenchConfig;
try {
  config = benchConfig();
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
const wanted = process.argv.slice(2);
const files = (await readdir(import.meta.dirname))
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark in ${import.meta.dirname} matches ${wanted.join(" ") || "*.bench.ts"}`);
  process.exit(1);
}
console.error(
  `${files.length} benchmark(s), ${config.rounds} rounds of ${config.durationS} s per side, ` +
    `${config.connections} connections, node ${process.version}`,
);

const results: BenchResult[] = [];
const failures: BenchFailure[] = [];
for (const file of files) {
  const mod = (await import(pathToFileURL(path.join(import.meta.dirname, file)).href)) as {
    benchmark?: Benchmark;
  };
  if (!mod.benchmark) {
    failures.push({ name: file, error: "exports no `benchmark`" });
    continue;
  }
  try {
    results.push(await runBenchmark(mod.benchmark, config));
  } catch (err) {
    console.error(`${mod.benchmark.name}: ${(err as Error).stack}`);
    failures.push({ name: mod.benchmark.name, error: (err as Error).message });
  }
}

if (results.length > 0) console.log(formatTable(results));
const written = await writeResults(config, results, failures);
console.error(`results written to ${path.relative(process.cwd(), written)}`);
for (const f of failures) console.error(`FAILED ${f.name}: ${f.error}`);
if (failures.length > 0) process.exitCode = 1;
