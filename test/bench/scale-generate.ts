import { scaleDatabases } from "./scale-support.ts";

// `npx node test/bench/scale-generate.ts`: generates (or checks) the scale benchmarks' big database alone.
const cleanups: (() => unknown)[] = [];
try {
  const dbs = await scaleDatabases({
    config: { rounds: 1, durationS: 1, warmUpS: 1, connections: 1 },
    defer: (c) => cleanups.push(c),
  });
  console.error(`big database ${dbs.big.replace(/\/\/[^@]*@/, "//")}, base ${dbs.base.toISOString()}`);
} finally {
  for (const c of cleanups.reverse()) await c();
}
