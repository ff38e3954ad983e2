import type { DomainConfig } from "#common/config/schema.ts";
import type { ScramCredentials } from "#common/credentials/scram.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { pluginDefiner } from "#common/plugins/definition.ts";
import type { PluginPoint } from "#common/plugins/registry.ts";
import type { Jid } from "#common/users/jid.ts";
import type { NewSecret } from "#common/users/web-users.ts";

/**
 * What decides, for one domain, whether a user may log in (docs/architecture.md "Plugins"). "No" is a value;
 * an exception means the backend could not answer (down, timed out, answered nonsense). The kinds
 * (`domains.<d>.authenticator.kind`) are the definitions of registry.ts; this file is the contract only and
 * imports none of them.
 */
export type CheckResult =
  /**
   * `validUntilMs`: when the password stops being good by itself (a token's `exp`, epoch ms); the auth core
   * remembers the success no longer than that, whatever the domain's cacheTtlSeconds.
   */
  { ok: true; validUntilMs?: number } | { ok: false; reason: "unknown_user" | "bad_password" | "disabled" };

/** What a backend keeps for get_password: cleartext (legacy rows, `keepCleartext` domains) and/or SCRAM data. */
export interface StoredSecret {
  cleartext?: string;
  scram?: ScramCredentials;
}

export type { NewSecret } from "#common/users/web-users.ts";

export interface Authenticator {
  readonly kind: string;
  /** Longer passwords are refused unread; 4096 bytes when unset (a token may be longer than a password). */
  readonly maxPasswordBytes?: number;
  checkPassword(jid: Jid, password: string): Promise<CheckResult>;
  userExists(jid: Jid): Promise<boolean>;
  /**
   * `userExists` is true for every name by design, not by a directory's answer (a token domain has none to
   * ask): `sidecars doctor` then reports it rather than warning that a made-up user exists.
   */
  readonly everyUserExists?: boolean;
  /** Only backends that hold credentials themselves; undefined when the user has none. */
  getSecret?(jid: Jid): Promise<StoredSecret | undefined>;
  /** false: no such user. */
  setPassword?(jid: Jid, secret: NewSecret): Promise<boolean>;
  /** false: the user exists already. */
  register?(jid: Jid, secret: NewSecret): Promise<boolean>;
  /** false: no such user. */
  removeUser?(jid: Jid): Promise<boolean>;
  close?(): Promise<void>;
}

export interface AuthenticatorDeps {
  domain: string;
  domainConfig: DomainConfig;
  pool: Pool;
  log: Logger;
}

export const authenticatorPoint: PluginPoint<Authenticator> = {
  name: "authenticator",
  docs: "docs/auth.md",
};

/**
 * A kind, or a per-domain module in externals-auth/<domain>.ts (its default export):
 * `export default defineAuthenticator({ kind: "module", summary, options, create(options, deps) })`.
 */
export const defineAuthenticator = pluginDefiner<AuthenticatorDeps, Authenticator | Promise<Authenticator>>();

/**
 * The shape per-domain modules had before `defineAuthenticator`, still read: a default-exported factory
 * that gets the domain's options unchecked.
 */
export type AuthenticatorFactory = (
  options: Record<string, unknown>,
  deps: AuthenticatorDeps,
) => Authenticator | Promise<Authenticator>;
