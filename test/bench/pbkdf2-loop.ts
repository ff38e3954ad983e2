import { pbkdf2, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { serveMeasurements } from "./closed-loop.ts";

// The baseline of auth-check-cold.bench.ts: bare crypto.pbkdf2 (async, on libuv's thread pool) with a fixed
// number of derivations in flight, as many as the load generator keeps requests in flight against the auth
// service. Runs as its own process (started with an IPC channel): each message { durationS } is answered
// with one measurement. Usage: node test/bench/pbkdf2-loop.ts <iterations> <keyLength> <digest> <inFlight>

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

const derive = promisify(pbkdf2);

serveMeasurements(inFlight as number, async () => {
  await derive(password, randomBytes(16), iterations as number, keyLength as number, digest);
});
