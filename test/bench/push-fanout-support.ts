import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { loadConfig } from "#common/config/load.ts";
import { createPool, type Pool } from "#common/db/pool.ts";
import { createNotifier, type Notifier } from "../../services/http-utility/src/push/notifier.ts";
import {
  closePushSenders,
  createPushSenders,
} from "../../services/http-utility/src/push/senders/registry.ts";
import type {
  PushMessage,
  PushSender,
  SendOutcome,
} from "../../services/http-utility/src/push/senders/sender.ts";
import type { TokenRow } from "../../services/http-utility/src/push/token-store.ts";
import { benchDatabase } from "./bench-database.ts";
import type { BenchContext, Side } from "./frame.ts";
import { type PushFakes, startPushFakes } from "./push-fakes.ts";
import type { FakesTaken } from "./push-fakes-process.ts";
import { type FanOutSample, fanOutSide, fanOutSummary } from "./push-fanout-load.ts";

/**
 * What the push fan-out benchmarks stand on: a database of their own with NOTIFICATIONS device tokens in
 * push_tokens, the fake providers in their own process (push-fakes.ts), and the project's push stack
 * composed as http-utility's main.ts composes it: `createPushSenders` (the real APNs / FCM
 * senders, pointed at the fakes through their endpoint deps) and `createNotifier` over the pool.
 */

export const NOTIFICATIONS = 10_000;
/** Notifications in flight on every side (a broadcast's pushConcurrency, raised). */
export const IN_FLIGHT = 64;

const APP = "BenchApp";
const DOMAIN = "push.bench";
const BUNDLE_ID = "com.example.bench";
const KEY_ID = "BENCHKEY01";
const TEAM_ID = "BENCHTEAM1";
export const PROJECT_ID = "push-bench";
const DATABASE_PREFIX = "bench_push_";

/** A chat alert as the MongooseIM hooks send: the notifier adds the badge it keeps per token. */
export const MESSAGE: PushMessage = {
  title: "Maria",
  body: "Are you coming tonight? The others are already there.",
  data: { type: "chat", from: "maria@push.bench", id: "3c9f0e2a-7d1b-4d55-9a61-2f0c8b7e4a11" },
  sound: "default",
  threadId: "maria@push.bench",
  collapseKey: "chat-maria",
};

/**
 * A fresh migrated database on DATABASE_URL's server or the embedded one (stopped again if started here),
 * dropped afterwards; as buddies-support.ts does (there it is not exported).
 */

/** A device token of the service: 64 hex digits for APNs, an FCM registration token's shape for FCM. */
function deviceToken(service: "apns" | "fcm", i: number): string {
  const hex = randomBytes(32).toString("hex");
  return service === "apns" ? hex : `f${i.toString(36)}:APA91b${randomBytes(105).toString("base64url")}`;
}

/** NOTIFICATIONS tokens of the service, one user each, stored as registration stores them; their rows. */
async function storeTokens(pool: Pool, service: "apns" | "fcm"): Promise<TokenRow[]> {
  const tokens = Array.from({ length: NOTIFICATIONS }, (_, i) => deviceToken(service, i));
  const nodes = tokens.map((_, i) => `bench-${String(i).padStart(5, "0")}`);
  await pool.query(
    `INSERT INTO push_tokens (service, token, app, domain, node)
     SELECT $1, t, $2, $3, n FROM unnest($4::text[], $5::text[]) AS u (t, n)`,
    [service, APP, DOMAIN, tokens, nodes],
  );
  const { rows } = await pool.query<TokenRow>(
    "SELECT service, token, app, domain, node, badge FROM push_tokens WHERE service = $1 ORDER BY node",
    [service],
  );
  if (rows.length !== NOTIFICATIONS) throw new Error(`${rows.length} tokens stored, not ${NOTIFICATIONS}`);
  return rows;
}

/**
 * As loopbackAgent() of fake-fcm.ts (every connection to the fake, the asked host as SNI) but keeping its
 * connections alive, as the FCM sender's own agent does without a test agent.
 */
function keepAliveLoopbackAgent(port: number, ca: string): https.Agent {
  class LoopbackAgent extends https.Agent {
    override createConnection(
      options: https.RequestOptions,
      callback?: (err: Error | null, stream: Duplex) => void,
    ): Duplex | null | undefined {
      const servername = (options as { servername?: string }).servername || options.host || "";
      return super.createConnection({ ...options, host: "127.0.0.1", port, servername }, callback);
    }
  }
  return new LoopbackAgent({ ca, keepAlive: true });
}

export interface PushStack {
  fakes: PushFakes;
  notifier: Notifier;
  /** The sender the notifier uses for these tokens, to measure it alone. */
  sender: PushSender;
  rows: TokenRow[];
  /** Log lines the push stack wrote (at info and above: none expected). */
  logLines(): string[];
  /** The notifier's fan-out (`toTokens`) to the first `count` tokens; each provider call's time. */
  fanOut(
    count: number,
    inFlight: number,
    message: PushMessage,
  ): Promise<{ elapsedS: number; latencies: Float64Array }>;
}

export async function startPushStack(ctx: BenchContext, service: "apns" | "fcm"): Promise<PushStack> {
  const config = loadConfig({ env: { ...process.env, APP_ENV: "test" } });
  const work = await mkdtemp(path.join(os.tmpdir(), "sidecars-bench-push-"));
  ctx.defer(() => rm(work, { recursive: true, force: true }));

  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const keyFile = path.join(work, "AuthKey.p8");
  await writeFile(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  const serviceAccountFile = path.join(work, "service-account.json");
  const fakes = await startPushFakes(ctx, {
    apnsKey: {
      keyId: KEY_ID,
      teamId: TEAM_ID,
      publicKey: String(publicKey.export({ type: "spki", format: "pem" })),
    },
    serviceAccountFile,
    projectId: PROJECT_ID,
  });

  // the service's level in production: the senders' debug lines are skipped, anything else is kept here
  const lines: string[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => lines.length < 100 && lines.push(line) });

  const databaseUrl = await benchDatabase(ctx, DATABASE_PREFIX);
  const pool = createPool(config, databaseUrl, log);
  ctx.defer(() => pool.end());
  const rows = await storeTokens(pool, service);

  const fcmAgent = keepAliveLoopbackAgent(fakes.fcm.port, fakes.fcm.ca);
  ctx.defer(() => fcmAgent.destroy());
  const senders = createPushSenders(
    service === "apns"
      ? {
          [APP]: { apns: { bundleId: BUNDLE_ID, production: true, keyFile, keyId: KEY_ID, teamId: TEAM_ID } },
        }
      : { [APP]: { fcm: { serviceAccountFile, projectId: PROJECT_ID } } },
    {
      log,
      env: config.env,
      secrets: config.secrets,
      endpoints: {
        fcmAgent,
        apnsEndpoint: { address: "127.0.0.1", port: fakes.apns.port, ca: fakes.apns.ca },
      },
    },
  );
  ctx.defer(() => closePushSenders(senders));
  const sender = senders.get(APP)?.get(service);
  if (!sender) throw new Error(`no ${service} sender built for ${APP}`);

  // the notifier's sender, timed: a fan-out's latency per notification is its provider call
  const timing: { record?: (ms: number) => void } = {};
  const timed: PushSender = {
    service: sender.service,
    close: () => sender.close(),
    async send(token, message) {
      const t0 = performance.now();
      try {
        return await sender.send(token, message);
      } finally {
        timing.record?.(performance.now() - t0);
      }
    },
  };
  const notifier = createNotifier({
    pool,
    senders: new Map([[APP, new Map([[service, timed]])]]),
    retry: config.push.retry,
    log,
    metrics: new Registry(),
  });
  return {
    fakes,
    notifier,
    sender,
    rows,
    logLines: () => lines,
    async fanOut(count, inFlight, message) {
      const latencies = new Float64Array(count);
      let n = 0;
      timing.record = (ms) => {
        if (n < count) latencies[n++] = ms;
      };
      const start = performance.now();
      const results = await notifier.toTokens(rows.slice(0, count), message, inFlight);
      const elapsedS = (performance.now() - start) / 1000;
      timing.record = undefined;
      const notSent = results.find((r) => r.status !== "sent");
      if (notSent) throw new Error(`not sent: ${notSent.status} ${notSent.reason ?? ""}`);
      return { elapsedS, latencies };
    },
  };
}

/**
 * The three sides both fan-out benchmarks compare: the notifier (`toTokens`), the bare client sending the
 * same requests, and the sender alone; their summary printed at the end.
 */
export function pushFanOutSides(
  ctx: BenchContext,
  o: {
    name: string;
    stack: PushStack;
    labels: { project: string; bare: string; alone: string };
    check: (t: FakesTaken) => string | undefined;
    bareSend: (token: string) => Promise<void>;
  },
): { project: Side; baseline: Side; extras: Side[] } {
  const { stack } = o;
  const token = (i: number) => (stack.rows[i] as TokenRow).token;
  const delivered = (r: SendOutcome) => {
    if (r.status !== "sent") throw new Error(`not sent: ${r.status} ${"reason" in r ? r.reason : ""}`);
  };
  const common = { count: NOTIFICATIONS, inFlight: IN_FLIGHT, fakes: stack.fakes, check: o.check };
  const project: FanOutSample[] = [];
  const baseline: FanOutSample[] = [];
  const alone: FanOutSample[] = [];
  ctx.defer(() => {
    console.error(
      fanOutSummary(o.name, [
        { label: o.labels.project, samples: project },
        { label: o.labels.bare, samples: baseline },
        { label: o.labels.alone, samples: alone },
      ]),
    );
    const lines = stack.logLines();
    if (lines.length > 0) console.error(`${o.name}: the push stack logged:\n${lines.slice(0, 5).join("")}`);
  });
  return {
    project: fanOutSide({
      ...common,
      label: o.labels.project,
      samples: project,
      fanOut: (count, inFlight) => stack.fanOut(count, inFlight, MESSAGE),
    }),
    baseline: fanOutSide({
      ...common,
      label: o.labels.bare,
      samples: baseline,
      send: (i) => o.bareSend(token(i)),
    }),
    extras: [
      fanOutSide({
        ...common,
        label: o.labels.alone,
        samples: alone,
        send: async (i) => delivered(await stack.sender.send(token(i), { ...MESSAGE, badge: 1 })),
      }),
    ],
  };
}
