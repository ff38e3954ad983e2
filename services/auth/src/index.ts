import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { closeAuthenticators, createAuthenticators } from "./authenticators/registry.ts";

/**
 * The auth service's public entry: what the other apps of this repository may use of it. http-utility
 * embeds the login core to check app callers (HTTP Basic with the XMPP password); the CLI clears lockouts
 * and serves ejabberd's extauth protocol; it and the buddies admin API check a domain's authenticator before
 * storing the domain. Everything else under services/auth/src is the service's own.
 */
export { type AppLogin, type AuthApi, type AuthCore, createAuthCore } from "./core/auth-core.ts";
export {
  clearLoginFailures,
  type LoginFailureSummary,
  loginFailureSummary,
  loginFailuresOf,
  type UserLoginFailures,
} from "./core/brute-force-guard.ts";
export { runExtauth } from "./extauth.ts";

/**
 * Builds the authenticators of these domains as the auth core would (kind, options, a module's file), then
 * closes them: throws a StartupProblems naming every problem. Before a domain is stored at runtime (the CLI,
 * the buddies admin API), so that no process is asked to load one it cannot.
 */
export async function checkAuthenticators(
  config: Pick<Config, "domains">,
  deps: { pool: Pool; log: Logger },
): Promise<void> {
  await closeAuthenticators(await createAuthenticators(config, deps));
}
