import { readFile } from "node:fs/promises";
import pg from "pg";
import sharp from "sharp";
import { loadConfig } from "#common/config/load.ts";
import type { DomainConfig } from "#common/config/schema.ts";
import { addUser } from "#common/users/web-users.ts";
import { freePort } from "../support/free-port.ts";
import {
  type AttachmentsService,
  nameOf,
  noisePixels,
  startAttachmentsService,
  uploadOnce,
} from "./attachments-support.ts";
import { AUTHORIZATION as AUTH_SERVICE_AUTHORIZATION, outcomeDelta, outcomes } from "./auth-support.ts";
import { benchConfigDir, benchDatabase } from "./bench-database.ts";
import { type ChildServer, startChildServer } from "./child-server.ts";
import type { BenchContext, Side } from "./frame.ts";
import { processTree } from "./process-cpu.ts";
import { type WrkLoad, wrkSide } from "./wrk.ts";

/**
 * What the scale-out benchmarks (scaleout-*.bench.ts, issue 18 item 7) share: one service started twice as pm2
 * cluster mode runs it (cluster-server.ts, as ecosystem.config.js deploys http-utility and auth), once with
 * one worker (the baseline) and once with two (the project), so the ratio is what a second worker adds. Both
 * run on the same machine as wrk: on 2 cores the generator, the workers and PostgreSQL share them, which is
 * why each round reports wrk's cores beside the server's.
 */

export const BASELINE_WORKERS = 1;
export const PROJECT_WORKERS = 2;

const CLUSTER = "test/bench/cluster-server.ts";

/** The CPU the frame samples for a side: the cluster's primary and its workers. */
export const treeOf = (server: ChildServer) => () => processTree(server.pid as number);

export const workers = (n: number) => `${n} worker${n === 1 ? "" : "s"}`;

/** A wrk side on one cluster, its CPU the cluster's. */
export function clusterSide(label: string, server: ChildServer, load: Omit<WrkLoad, "base">): Side {
  return wrkSide(label, { ...load, base: server.url }, treeOf(server));
}

// ---- http-utility

export interface HttpUtilityCluster {
  service: AttachmentsService;
  /** The path of a stored picture's thumbnail (a small real file), uploaded through the API. */
  thumbnailPath: string;
  /** Its bytes. */
  thumbnail: Buffer;
}

/** A 512×512 JPEG of smooth noise: its WebP thumbnail is a few KB, as a chat's thumbnails are. */
function picture(): Promise<Buffer> {
  const side = 40;
  return sharp(noisePixels(side, side, 7), { raw: { width: side, height: side, channels: 3 } })
    .resize(512, 512, { kernel: "cubic" })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/**
 * http-utility (services/http-utility/src/main.ts) with BASELINE_WORKERS and with PROJECT_WORKERS workers,
 * each with an fs storage of its own holding one uploaded picture; the bench user is attachments-support.ts's
 * (`AUTHORIZATION` there).
 */
export async function startHttpUtilityClusters(
  ctx: BenchContext,
): Promise<{ baseline: HttpUtilityCluster; project: HttpUtilityCluster }> {
  // A database of their own (DATABASE_URL, which attachments-support.ts resolves as the services do): another
  // benchmark's start or end clears the bench domain's rows, its user among them, from the shared database.
  const databaseUrl = await benchDatabase(ctx, "bench_scaleout_http_");
  const previous = process.env.DATABASE_URL;
  process.env.DATABASE_URL = databaseUrl;
  let one: AttachmentsService;
  let two: AttachmentsService;
  try {
    // both started before any upload: a start clears the bench domain's rows (attachments-support.ts)
    one = await startAttachmentsService(ctx, {}, { workers: BASELINE_WORKERS });
    two = await startAttachmentsService(ctx, {}, { workers: PROJECT_WORKERS });
  } finally {
    if (previous === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = previous;
  }
  const file = await picture();
  const withThumbnail = async (service: AttachmentsService): Promise<HttpUtilityCluster> => {
    const answer = await uploadOnce(service, "pictures", file, "scaleout.jpg", "image/jpeg");
    if (!answer.thumbnailUrl) throw new Error(`${service.server.name}: the picture got no thumbnail`);
    const thumbnailPath = new URL(answer.thumbnailUrl).pathname;
    const thumbnail = await readFile(service.fileOf(nameOf(answer.thumbnailUrl)));
    return { service, thumbnailPath, thumbnail };
  };
  return { baseline: await withThumbnail(one), project: await withThumbnail(two) };
}

// ---- auth

/** check_password with the success cache at its default (60 s), as auth-check-cached's domain. */
export const AUTH_DOMAIN = "scaleout.bench.test";
export const AUTH_USER = "scaleout-user";
export const AUTH_PASSWORD = "scaleout-password";
const AUTH_BASIC_AUTH = "bench:bench-secret"; // auth-support.ts's AUTHORIZATION

export { AUTH_SERVICE_AUTHORIZATION };

/**
 * The auth service (services/auth/src/main.ts) with BASELINE_WORKERS and with PROJECT_WORKERS workers, on a
 * database of the benchmark's own (dropped at the end) holding the one user.
 */
export async function startAuthClusters(
  ctx: BenchContext,
): Promise<{ baseline: ChildServer; project: ChildServer }> {
  const databaseUrl = await benchDatabase(ctx, "bench_scaleout_auth_");
  const configDir = benchConfigDir(ctx, {
    domains: {
      [AUTH_DOMAIN]: { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" },
    },
  });
  const env = {
    ...process.env,
    APP_ENV: "test",
    CONFIG_DIR: configDir,
    LOG_LEVEL: "warn",
    DATABASE_URL: databaseUrl,
  };
  const domain = loadConfig({ env }).domains[AUTH_DOMAIN] as DomainConfig;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  try {
    await addUser(pool, { node: AUTH_USER, domain: AUTH_DOMAIN }, { cleartext: AUTH_PASSWORD }, domain);
  } finally {
    await pool.end();
  }
  const start = async (n: number) => {
    const port = await freePort();
    const server = await startChildServer({
      name: `auth (${workers(n)})`,
      script: CLUSTER,
      args: [String(n), "services/auth/src/main.ts"],
      env: { ...env, AUTH_PORT: String(port), AUTH_BASIC_AUTH },
      url: `http://127.0.0.1:${port}`,
      readyPath: "/healthz",
    });
    ctx.defer(server.stop);
    return server;
  };
  return { baseline: await start(BASELINE_WORKERS), project: await start(PROJECT_WORKERS) };
}

/**
 * A side whose every load is also checked against what the service counted (its /metrics, merged over the
 * workers by services/common/src/http/cluster-metrics.ts): `verify` names a problem or returns undefined.
 */
export function countedSide(
  side: Side,
  url: string,
  counted: { domain: string; method: string },
  verify: (delta: Record<string, number>, total: number) => string | undefined,
): Side {
  return {
    ...side,
    async measure(durationS) {
      const before = await outcomes(url, counted.domain, counted.method);
      const sample = await side.measure(durationS);
      const delta = outcomeDelta(before, await outcomes(url, counted.domain, counted.method));
      const total = (sample as { total?: number }).total ?? 0;
      const problem = verify(delta, total);
      if (problem) {
        throw new Error(`${side.label}: ${problem} (${total} answered; outcomes ${JSON.stringify(delta)})`);
      }
      return sample;
    },
  };
}
