import path from "node:path";
import { loadConfig } from "#common/config/load.ts";
import type { DomainConfig } from "#common/config/schema.ts";
import { relativePathOf } from "#common/media/fs-storage.ts";
import { addUser } from "#common/users/web-users.ts";
import { benchConfigDir } from "./bench-database.ts";
import type { BenchContext } from "./frame.ts";
import { DOMAINS } from "./scale-data.ts";
import {
  type ScaleDatabases,
  type ScaleService,
  scaleDatabases,
  scalePools,
  scratchDir,
  startScaleService,
} from "./scale-support.ts";

/**
 * http-utility (services/http-utility/src/main.ts) once on the big database and once on the empty one, each
 * with an fs storage of its own, the push apps of the generated tokens on the log sender, and the bench's one
 * user (`USER`, domain `DOMAIN`) in both databases.
 */

export const DOMAIN = "http.scale.bench";
export const USER = { node: "306999000001", domain: DOMAIN };
const PASSWORD = "scale-user-secret";
export const USER_AUTHORIZATION = `Basic ${Buffer.from(`${USER.node}@${DOMAIN}:${PASSWORD}`).toString("base64")}`;
export const PUSH_APP = "ScaleApp";

const plain = { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" };

export interface HttpUtilitySide extends ScaleService {
  storageRoot: string;
  fileOf(name: string): string;
}

export interface HttpUtilityPair {
  dbs: ScaleDatabases;
  big: HttpUtilitySide;
  empty: HttpUtilitySide;
}

export async function startHttpUtilityPair(
  ctx: BenchContext,
  o: { media?: Record<string, unknown> } = {},
): Promise<HttpUtilityPair> {
  const dbs = await scaleDatabases(ctx);
  const pools = scalePools(ctx, dbs);
  const start = async (label: string, databaseUrl: string): Promise<HttpUtilitySide> => {
    const dir = await scratchDir(ctx, "http-utility");
    const storageRoot = path.join(dir, "storage");
    const configDir = benchConfigDir(ctx, {
      domains: { ...Object.fromEntries([...DOMAINS, DOMAIN].map((d) => [d, plain])) },
      push: {
        apps: { [PUSH_APP]: { log: {} }, ScaleChat: { log: {} } },
        domains: Object.fromEntries([...DOMAINS, DOMAIN].map((d) => [d, { app: PUSH_APP }])),
      },
      media: {
        storage: { kind: "fs", options: { root: storageRoot } },
        tmpDir: path.join(dir, "tmp"),
        quotaBytes: 0,
        dailyUploadBytes: 0,
        ...o.media,
      },
    });
    const service = await startScaleService(ctx, {
      name: `http-utility (${label})`,
      service: "http-utility",
      configDir,
      databaseUrl,
    });
    return { ...service, storageRoot, fileOf: (name) => path.join(storageRoot, relativePathOf(name)) };
  };
  const config = loadConfig({
    env: { ...process.env, APP_ENV: "test" },
    overrides: { domains: { [DOMAIN]: plain } },
  });
  for (const pool of [pools.big, pools.empty]) {
    await addUser(pool, USER, { cleartext: PASSWORD }, config.domains[DOMAIN] as DomainConfig);
  }
  return { dbs, big: await start("big database", dbs.big), empty: await start("empty database", dbs.empty) };
}
