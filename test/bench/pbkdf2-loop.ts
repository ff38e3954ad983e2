import { pbkdf2, randomBytes } from "node:crypto";

// The baseline of auth-check-cold.bench.ts: bare crypto.pbkdf2 (async, on libuv's thread pool) with a fixed
// number of derivations in flight, as many as the load generator keeps requests in flight against the auth
// service. Runs as its own process (started with an IPC channel): each message { durationS } is answered
// with one measurement. Usage: node test/bench/pbkdf2-loop.ts <iterations> <keyLength> <digest> <inFlight>

export interface LoopRequest {
  durationS: number;
}

export interface LoopResult {
  /** Derivations completed within the window. */
  count: number;
  elapsedS: number;
  p50Ms: number;
  p99Ms: number;
}

const [iterations, keyLength, inFlight] = [process.argv[2], process.argv[3], process.argv[5]].map(Number);
const digest = process.argv[4] ?? "";
if (
  !process.send ||
  ![iterations, keyLength, inFlight].every((n) => Number.isInteger(n) && (n as number) > 0) ||
  !digest
) {
  console.error("usage (with an IPC channel): pbkdf2-loop.ts <iterations> <keyLength> <digest> <inFlight>");
  process.exit(2);
}

const password = "bench-password".normalize("NFKC"); // as deriveEntry does

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function measure(durationS: number): Promise<LoopResult> {
  const start = performance.now();
  const deadline = start + durationS * 1000;
  const latencies: number[] = [];
  let running = 0;
  return new Promise((resolve, reject) => {
    const launch = () => {
      running++;
      const t0 = performance.now();
      pbkdf2(password, randomBytes(16), iterations as number, keyLength as number, digest, (err) => {
        running--;
        const now = performance.now();
        if (err) return reject(err);
        if (now <= deadline) {
          latencies.push(now - t0);
          launch();
        } else if (running === 0) {
          // the ones still in flight at the deadline have finished: the next measurement starts clean
          latencies.sort((a, b) => a - b);
          const round = (ms: number) => Math.round(ms * 10) / 10;
          resolve({
            count: latencies.length,
            elapsedS: durationS,
            p50Ms: round(percentile(latencies, 50)),
            p99Ms: round(percentile(latencies, 99)),
          });
        }
      });
    };
    for (let i = 0; i < (inFlight as number); i++) launch();
  });
}

process.on("message", (msg: LoopRequest) => {
  measure(msg.durationS).then(
    (result) => process.send?.(result),
    (err: Error) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.on("disconnect", () => process.exit(0));
