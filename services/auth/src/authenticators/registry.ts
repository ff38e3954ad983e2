import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ZodError } from "zod";
import type { Config, DomainConfig } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { StartupError } from "#common/errors.ts";
import type { Logger } from "#common/logger.ts";
import { fromRoot } from "#common/paths.ts";
import type { Authenticator, AuthenticatorDeps, AuthenticatorFactory } from "./authenticator.ts";
import { createHttpAuthenticator } from "./http-authenticator.ts";
import { createWebUsersAuthenticator } from "./web-users-authenticator.ts";

/** Where per-domain modules live: one file per domain, `<domain>.ts` (the legacy "domain auth file"). */
export const EXTERNALS_DIR = fromRoot("services/auth/externals-auth");

export interface DomainAuth {
  domain: string;
  config: DomainConfig;
  authenticator: Authenticator;
  /** web_users for this domain: its buddies are always checked there, whatever the authenticator. */
  webUsers: Authenticator;
  buddies: ReadonlySet<string>;
}

export type Registry = ReadonlyMap<string, DomainAuth>;

let generation = 0;

async function loadModule(domain: string, dir: string): Promise<AuthenticatorFactory> {
  const file = path.join(dir, `${domain}.ts`);
  if (!existsSync(file)) {
    throw new StartupError(
      `domains.${domain}: authenticator "module" needs ${file}; create it (see externals-auth/README.md)`,
    );
  }
  // a query makes a reload import the file anew, so a changed module takes effect at SIGHUP
  const mod = (await import(`${pathToFileURL(file).href}?generation=${generation}`)) as { default?: unknown };
  if (typeof mod.default !== "function") {
    throw new StartupError(`${file}: must export default a factory (options, deps) => Authenticator`);
  }
  return mod.default as AuthenticatorFactory;
}

/**
 * One authenticator per configured domain; throws a StartupError naming the domain and the fix on an
 * unknown kind, bad options or a missing module, before the service listens (or, at SIGHUP, before the
 * new domains replace the old ones).
 */
export async function buildRegistry(
  config: Pick<Config, "domains">,
  deps: { pool: Pool; log: Logger; externalsDir?: string },
): Promise<Registry> {
  generation++;
  const registry = new Map<string, DomainAuth>();
  for (const [domain, domainConfig] of Object.entries(config.domains)) {
    const d: AuthenticatorDeps = { domain, domainConfig, pool: deps.pool, log: deps.log.child({ domain }) };
    const { kind, options } = domainConfig.authenticator;
    let authenticator: Authenticator;
    try {
      if (kind === "web_users") authenticator = createWebUsersAuthenticator(d);
      else if (kind === "http") authenticator = createHttpAuthenticator(options, d);
      else authenticator = await (await loadModule(domain, deps.externalsDir ?? EXTERNALS_DIR))(options, d);
    } catch (err) {
      if (err instanceof StartupError) throw err;
      const why =
        err instanceof ZodError
          ? err.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ")
          : (err as Error).message;
      throw new StartupError(`domains.${domain}.authenticator (${kind}): ${why}; fix the options in config`);
    }
    registry.set(domain, {
      domain,
      config: domainConfig,
      authenticator,
      webUsers: kind === "web_users" ? authenticator : createWebUsersAuthenticator(d),
      buddies: new Set(domainConfig.buddies.map((b) => b.toLowerCase())),
    });
  }
  return registry;
}

export async function closeRegistry(registry: Registry): Promise<void> {
  await Promise.all([...registry.values()].map((d) => d.authenticator.close?.()));
}
