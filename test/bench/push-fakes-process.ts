import type { KeyObject } from "node:crypto";
import type { Agent } from "node:https";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { type FakeApns, startFakeApns } from "../support/fake-apns.ts";
import { type FakeFcm, FCM_HOST, startFakeFcm } from "../support/fake-fcm.ts";

/**
 * The local APNs and FCM of the push fan-out benchmarks (test/support/fake-apns.ts, fake-fcm.ts), in a
 * process of their own so that the project and the bare clients share neither an event loop nor a CPU
 * with them, and both sides hit the very same servers. Driven over IPC by push-fakes.ts:
 *
 * - `start` → the ports and the certificates to trust;
 * - `take`  → what reached the fakes since the last `take` (counts, statuses, the last request of each,
 *   the CPU this process spent), after which their request logs are emptied, so 10,000s of recorded
 *   requests never pile up in this process across rounds.
 *
 * The fakes write no log. The process exits when its IPC channel closes (the bench ended or died).
 *
 * The fake APNs checks the ES256 signature of the JWT on every request; Apple does that on its own
 * machines, and here it would be most of the fakes' CPU, taken from the two sides measured on the same
 * machine. A signature check is a pure function of key, data and signature, so its answers are remembered
 * (below): the JWT is still checked, once per distinct token.
 */

export interface FakesStart {
  op: "start";
  apnsKey: { keyId: string; teamId: string; publicKey: string };
  /** Where the fake FCM writes the service-account key its token endpoint trusts. */
  serviceAccountFile: string;
  projectId: string;
}

export interface FakesStarted {
  op: "started";
  apns: { port: number; ca: string };
  fcm: { port: number; ca: string };
}

export interface RecordedRequest {
  headers: Record<string, string>;
  body: unknown;
}

export interface FakesTaken {
  op: "taken";
  /** Authenticated APNs requests with a JSON body (all answered 200: nothing is scripted). */
  apns: { count: number; connections: number; last?: RecordedRequest };
  /** FCM v1 sends by status, OAuth token grants, the last send. */
  fcm: { sends: Record<number, number>; tokenGrants: number; last?: RecordedRequest };
  /** CPU time of this process since the last `take`, ms. */
  cpuMs: number;
}

type Request = FakesStart | { op: "take" };

type Verify = (algorithm: string | null, data: Buffer, key: unknown, signature: Buffer) => boolean;

function rememberSignatureChecks(): void {
  const crypto = createRequire(import.meta.url)("node:crypto") as { verify: Verify };
  const verify = crypto.verify;
  const known = new WeakMap<KeyObject, Map<string, boolean>>();
  crypto.verify = (algorithm, data, key, signature) => {
    const { key: keyObject, dsaEncoding } = (key ?? {}) as { key?: unknown; dsaEncoding?: string };
    if (typeof keyObject !== "object" || keyObject === null || !("asymmetricKeyType" in keyObject)) {
      return verify(algorithm, data, key, signature);
    }
    const answers = known.get(keyObject as KeyObject) ?? new Map<string, boolean>();
    known.set(keyObject as KeyObject, answers);
    const id = `${algorithm}\0${dsaEncoding}\0${data.toString("latin1")}\0${signature.toString("latin1")}`;
    let ok = answers.get(id);
    if (ok === undefined) {
      ok = verify(algorithm, data, key, signature);
      if (answers.size > 100) answers.clear();
      answers.set(id, ok);
    }
    return ok;
  };
  // the fakes import `verify` from node:crypto: their binding follows the builtin's export
  syncBuiltinESMExports();
}
rememberSignatureChecks();

let apns: FakeApns | undefined;
let fcm: FakeFcm | undefined;
let cpu = process.cpuUsage();

function stringHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = String(v);
  return out;
}

function take(): FakesTaken {
  if (!apns || !fcm) throw new Error("the fakes are not started");
  const a = apns.requests.splice(0);
  const f = fcm.requests.splice(0);
  const sends: Record<number, number> = {};
  let tokenGrants = 0;
  let last: RecordedRequest | undefined;
  for (const r of f) {
    if (r.host !== FCM_HOST) {
      tokenGrants++;
      continue;
    }
    sends[r.status] = (sends[r.status] ?? 0) + 1;
    last = { headers: stringHeaders(r.headers), body: r.body };
  }
  const lastApns = a.at(-1);
  const used = process.cpuUsage(cpu);
  cpu = process.cpuUsage();
  return {
    op: "taken",
    apns: {
      count: a.length,
      connections: apns.connections(),
      ...(lastApns && { last: { headers: lastApns.headers, body: lastApns.body } }),
    },
    fcm: { sends, tokenGrants, ...(last && { last }) },
    cpuMs: Math.round((used.user + used.system) / 1000),
  };
}

async function start(o: FakesStart): Promise<FakesStarted> {
  apns = await startFakeApns({ tokenKeys: [o.apnsKey] });
  fcm = await startFakeFcm();
  await fcm.addServiceAccount(o.serviceAccountFile, o.projectId);
  // the fake keeps its certificate to itself; its agent carries it as the CA to trust
  const ca = String((fcm.agent() as Agent & { options: { ca?: unknown } }).options.ca);
  return { op: "started", apns: { port: apns.port, ca: apns.ca }, fcm: { port: fcm.port, ca } };
}

process.on("message", (msg: Request) => {
  const reply = msg.op === "start" ? start(msg) : Promise.resolve().then(take);
  reply.then(
    (answer) => process.send?.(answer),
    (err: Error) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.on("disconnect", () => {
  const closing = [apns?.close(), fcm?.close()];
  void Promise.allSettled(closing).then(() => process.exit(0));
  // a client still holding a connection open must not keep this process alive
  setTimeout(() => process.exit(0), 2000).unref();
});
