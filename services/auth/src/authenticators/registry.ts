import type { Config, DomainConfig } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { fromRoot } from "#common/paths.ts";
import { createModuleFolder } from "#common/plugins/folder.ts";
import { ProblemCollector } from "#common/plugins/problems.ts";
import { createRegistry } from "#common/plugins/registry.ts";
import { type Authenticator, type AuthenticatorDeps, authenticatorPoint } from "./authenticator.ts";
import http from "./http-authenticator.ts";
import jwt from "./jwt-authenticator.ts";
import ldap from "./ldap-authenticator.ts";
import { moduleAuthenticator } from "./module-authenticator.ts";
import webUsers, { createWebUsersAuthenticator } from "./web-users-authenticator.ts";

/** Where per-domain modules live: one file per domain, `<domain>.ts` (the legacy "domain auth file"). */
export const EXTERNALS_DIR = fromRoot("services/auth/externals-auth");

/** A domain name as config allows it, never a path: what may name a module file. */
const DOMAIN_FILE = /^[a-z0-9][a-z0-9.-]*$/;

/** The authenticator kinds (`domains.<d>.authenticator.kind`), `module` reading from `externalsDir`. */
export function createAuthenticatorKinds(externalsDir = EXTERNALS_DIR) {
  const modules = createModuleFolder({ dir: externalsDir, name: DOMAIN_FILE, suggest: ".ts" });
  return createRegistry(authenticatorPoint, [webUsers, http, moduleAuthenticator(modules), jwt, ldap]);
}

export interface DomainAuth {
  domain: string;
  config: DomainConfig;
  authenticator: Authenticator;
  /** web_users for this domain: its buddies are always checked there, whatever the authenticator. */
  webUsers: Authenticator;
  buddies: ReadonlySet<string>;
}

/** By domain. */
export type Authenticators = ReadonlyMap<string, DomainAuth>;

/**
 * One authenticator per configured domain. Every problem of every domain (an unknown kind, bad options, a
 * missing or broken module) is in the one StartupProblems thrown before the service listens, or, at SIGHUP,
 * before the new domains replace the old ones; what was created by then is closed.
 */
export async function createAuthenticators(
  config: Pick<Config, "domains">,
  deps: { pool: Pool; log: Logger; externalsDir?: string },
): Promise<Authenticators> {
  const kinds = createAuthenticatorKinds(deps.externalsDir);
  const authenticators = new Map<string, DomainAuth>();
  const problems = new ProblemCollector();
  for (const [domain, domainConfig] of Object.entries(config.domains)) {
    const d: AuthenticatorDeps = { domain, domainConfig, pool: deps.pool, log: deps.log.child({ domain }) };
    const entry = domainConfig.authenticator;
    let authenticator: Authenticator;
    try {
      authenticator = await kinds.create(`domains.${domain}.authenticator`, entry, d);
    } catch (err) {
      problems.add(err);
      continue;
    }
    authenticators.set(domain, {
      domain,
      config: domainConfig,
      authenticator,
      webUsers: entry.kind === "web_users" ? authenticator : createWebUsersAuthenticator(d),
      buddies: new Set(domainConfig.buddies.map((b) => b.toLowerCase())),
    });
  }
  if (problems.any) {
    await closeAuthenticators(authenticators);
    problems.throwIfAny();
  }
  return authenticators;
}

export async function closeAuthenticators(authenticators: Authenticators): Promise<void> {
  await Promise.all([...authenticators.values()].map((d) => d.authenticator.close?.()));
}
