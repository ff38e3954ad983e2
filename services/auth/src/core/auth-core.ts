import { Histogram, type Registry as MetricsRegistry } from "prom-client";
import type { Config } from "#common/config/schema.ts";

import {
  isScramSerialization,
  parseScramSerialization,
  toLegacySerialization,
  toMultiSerialization,
} from "#common/credentials/scram-serialization.ts";
import type { Listener } from "#common/db/listener.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { type Jid, validateUserPart } from "#common/users/jid.ts";
import { credentialsFor, type NewSecret } from "#common/users/web-users.ts";
import type { Authenticator } from "../authenticators/authenticator.ts";
import {
  type Authenticators,
  closeAuthenticators,
  createAuthenticators,
  type DomainAuth,
} from "../authenticators/registry.ts";
import { BruteForceGuard } from "./brute-force-guard.ts";
import { SuccessCache } from "./success-cache.ts";

/**
 * The decisions behind MongooseIM's auth contract and ejabberd's extauth, per domain: which authenticator
 * answers (buddies always web_users), the success cache, the brute-force guard, the password formats.
 * "No" is a value; a backend that cannot answer throws, and the caller answers with its contract's error.
 */
export interface AuthApi {
  /** A check from MongooseIM or ejabberd, which send no client address: wrong answers slow down, never lock. */
  checkPassword(jid: Jid, password: string): Promise<boolean>;
  /** A check of an app's login from `client` (its address): bounded per address, before any password check. */
  checkAppLogin(jid: Jid, password: string, client: string): Promise<AppLogin>;
  getPassword(jid: Jid): Promise<string | undefined>;
  userExists(jid: Jid): Promise<boolean>;
  setPassword(jid: Jid, pass: string): Promise<"ok" | "unknown_user" | "refused">;
  register(jid: Jid, pass: string): Promise<"created" | "exists" | "refused">;
  removeUser(jid: Jid): Promise<"removed" | "unknown_user" | "refused">;
  removeUserValidate(
    jid: Jid,
    pass: string,
  ): Promise<"removed" | "unknown_user" | "bad_password" | "refused">;
}

export interface AuthCore extends AuthApi {
  /** Whether the domain's authenticator answers user_exists true for every name by design (Authenticator). */
  everyUserExists(domain: string): boolean;
  /** New domains and modules from a new config; the old ones stay if the new ones cannot be built. */
  reload(config: Pick<Config, "domains">): Promise<void>;
  close(): Promise<void>;
}

export type AppLogin =
  | { ok: true }
  | { ok: false; reason: "bad_credentials" }
  /** the right password of an account an operator disabled (`sidecars users disable`) */
  | { ok: false; reason: "disabled" }
  /** this address has used its budget of failures (for this JID, or for all): nothing was checked */
  | { ok: false; reason: "throttled"; retryAfterS: number };

export class TimeoutError extends Error {
  override name = "TimeoutError";
}

const MAX_PASSWORD_BYTES = 4096;
export const WEB_USERS_CHANNEL = "web_users_changed";

type Outcome = "ok" | "no" | "cached" | "throttled" | "unknown_domain" | "error";
/** Why a check said no, where the caller tells it apart. */
type Refusal = "disabled" | undefined;

export async function createAuthCore(deps: {
  config: Pick<Config, "domains" | "services">;
  pool: Pool;
  /** The process's LISTEN connection: a changed or removed web_users row drops what the cache knows of it. */
  listener: Listener;
  log: Logger;
  metrics?: MetricsRegistry;
  externalsDir?: string;
}): Promise<AuthCore> {
  const { pool, log } = deps;
  const auth = deps.config.services.auth;
  let registry: Authenticators = await createAuthenticators(deps.config, deps);
  const cache = new SuccessCache();
  const guard = new BruteForceGuard(pool, auth.guard);

  const listener = deps.listener.subscribe([WEB_USERS_CHANNEL], {
    onMessage(_channel, payload) {
      try {
        const [domain, node] = JSON.parse(payload) as [string, string];
        cache.dropUser({ domain, node });
      } catch {
        cache.clear();
      }
    },
    onReconnect() {
      cache.clear(); // changes made while we were not listening are unknown
    },
  });

  const duration = new Histogram({
    name: "auth_checks_duration_seconds",
    help: "Auth decisions by domain, method and outcome",
    labelNames: ["domain", "method", "outcome"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: deps.metrics ? [deps.metrics] : [],
  });

  // one child per label set, looked up by a string: prom-client's own lookup hashes a labels object per call
  const series = new Map<string, { observe(seconds: number): void }>();
  function seriesOf(domain: string, method: string, outcome: Outcome) {
    const key = `${domain}\u0000${method}\u0000${outcome}`;
    let child = series.get(key);
    if (!child) {
      child = duration.labels(domain, method, outcome);
      series.set(key, child);
    }
    return child;
  }

  async function measured<T>(method: string, jid: Jid, fn: () => Promise<[T, Outcome]>): Promise<T> {
    const start = process.hrtime.bigint();
    const domain = registry.has(jid.domain) ? jid.domain : "(unknown)";
    let outcome: Outcome = "error";
    try {
      const [value, o] = await fn();
      outcome = o;
      return value;
    } finally {
      seriesOf(domain, method, outcome).observe(Number(process.hrtime.bigint() - start) / 1e9);
    }
  }

  /** A backend call bounded by backendTimeoutMs: MongooseIM gives up soon anyway. */
  function bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`no answer within ${auth.backendTimeoutMs} ms`)),
        auth.backendTimeoutMs,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  const domainOf = (jid: Jid): DomainAuth | undefined =>
    validateUserPart(jid.node) === undefined ? registry.get(jid.domain) : undefined;
  const authenticatorOf = (d: DomainAuth, jid: Jid): Authenticator =>
    d.buddies.has(jid.node) ? d.webUsers : d.authenticator;

  /** A password as MongooseIM sends it: its SCRAM serialization (format scram) or cleartext. */
  function secretOf(pass: string): NewSecret | undefined {
    if (pass.length === 0 || Buffer.byteLength(pass) > MAX_PASSWORD_BYTES) return undefined;
    if (!isScramSerialization(pass)) return { cleartext: pass };
    const scram = parseScramSerialization(pass);
    return scram ? { scram } : undefined;
  }

  /**
   * One password check: the success cache, then the authenticator. `undefined` for a domain we do not serve
   * or a password no one can have; every "no" costs what a "yes" would (an unknown user is checked against a
   * dummy derivation), so timing tells no one which users exist.
   */
  async function check(jid: Jid, password: string): Promise<[boolean, Outcome, Refusal?]> {
    const d = domainOf(jid);
    if (!d) return [false, "unknown_domain"];
    const a = authenticatorOf(d, jid);
    const maxBytes = a.maxPasswordBytes ?? MAX_PASSWORD_BYTES;
    if (password.length === 0 || Buffer.byteLength(password) > maxBytes) return [false, "no"];
    if (listener.connected() && cache.has(jid, password)) return [true, "cached"];
    const generation = cache.generation(jid);
    const result = await bounded(a.checkPassword(jid, password));
    if (!result.ok) return [false, "no", result.reason === "disabled" ? "disabled" : undefined];
    // a token is remembered no longer than it is valid (its exp), whatever the domain's TTL
    if (listener.connected())
      cache.put(jid, password, d.config.cacheTtlSeconds * 1000, generation, result.validUntilMs);
    return [true, "ok"];
  }

  const core: AuthCore = {
    checkPassword(jid, password) {
      return measured("check_password", jid, async () => {
        const [ok, outcome] = await check(jid, password);
        if (ok || outcome === "unknown_domain") return [ok, outcome];
        const delayMs = await guard.serverFailed(jid).catch((err: Error) => {
          log.warn({ err: err.message }, "guard unavailable");
          return 0;
        });
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        return [false, outcome];
      });
    },

    checkAppLogin(jid, password, client) {
      return measured("app_login", jid, async (): Promise<[AppLogin, Outcome]> => {
        // a password this process saw succeed is no guess: the hot path asks the database nothing
        if (domainOf(jid) && listener.connected() && cache.has(jid, password))
          return [{ ok: true }, "cached"];
        const allowed = await guard.appAllowed(jid, client);
        if (!allowed.ok)
          return [{ ok: false, reason: "throttled", retryAfterS: allowed.retryAfterS }, "throttled"];
        const [ok, outcome, refusal] = await check(jid, password);
        if (ok) {
          if (outcome === "ok") await guard.appSucceeded(jid, client);
          return [{ ok: true }, outcome];
        }
        // the authenticator says so only to the right password (no guess to count): the app can tell its user
        if (refusal === "disabled") return [{ ok: false, reason: "disabled" }, outcome];
        await guard.appFailed(jid, client);
        return [{ ok: false, reason: "bad_credentials" }, outcome];
      });
    },

    getPassword(jid) {
      return measured("get_password", jid, async () => {
        const d = domainOf(jid);
        if (!d) return [undefined, "unknown_domain"];
        const remembered = listener.connected() ? cache.answer(jid) : undefined;
        if (remembered !== undefined) return [remembered, "cached"];
        const generation = cache.generation(jid);
        const a = authenticatorOf(d, jid);
        const secret = a.getSecret ? await bounded(a.getSecret(jid)) : undefined;
        if (!secret) return [undefined, "no"];
        if (d.config.passwordFormat === "plain") {
          return d.config.keepCleartext && secret.cleartext !== undefined
            ? [secret.cleartext, "ok"]
            : [undefined, "no"];
        }
        // a legacy row has only its cleartext: serve SCRAM data derived from it (it is rehashed at login)
        const scram =
          secret.scram ??
          (secret.cleartext !== undefined
            ? (await credentialsFor({ cleartext: secret.cleartext }, d.config)).scram
            : undefined);
        if (!scram) return [undefined, "no"];
        const text =
          d.config.scramFormat === "legacy"
            ? toLegacySerialization(scram)
            : toMultiSerialization(scram, d.config.scramHashes);
        if (!text) return [undefined, "no"];
        if (listener.connected()) cache.putAnswer(jid, text, d.config.cacheTtlSeconds * 1000, generation);
        return [text, "ok"];
      });
    },

    everyUserExists(domain) {
      return registry.get(domain)?.authenticator.everyUserExists === true;
    },

    userExists(jid) {
      return measured("user_exists", jid, async () => {
        const d = domainOf(jid);
        if (!d) return [false, "unknown_domain"];
        const exists = await bounded(authenticatorOf(d, jid).userExists(jid));
        return [exists, exists ? "ok" : "no"];
      });
    },

    setPassword(jid, pass) {
      return measured("set_password", jid, async () => {
        const d = domainOf(jid);
        const a = d && authenticatorOf(d, jid);
        const secret = secretOf(pass);
        if (!a?.setPassword || !secret) return ["refused" as const, d ? "no" : "unknown_domain"];
        const changed = await bounded(a.setPassword(jid, secret));
        cache.dropUser(jid);
        return changed ? ["ok" as const, "ok"] : ["unknown_user" as const, "no"];
      });
    },

    register(jid, pass) {
      return measured("register", jid, async () => {
        const d = domainOf(jid);
        const a = d && authenticatorOf(d, jid);
        const secret = secretOf(pass);
        if (!a?.register || !secret) return ["refused" as const, d ? "no" : "unknown_domain"];
        return (await bounded(a.register(jid, secret)))
          ? ["created" as const, "ok"]
          : ["exists" as const, "no"];
      });
    },

    removeUser(jid) {
      return measured("remove_user", jid, async () => {
        const d = domainOf(jid);
        const a = d && authenticatorOf(d, jid);
        if (!a?.removeUser) return ["refused" as const, d ? "no" : "unknown_domain"];
        const removed = await bounded(a.removeUser(jid));
        cache.dropUser(jid);
        return removed ? ["removed" as const, "ok"] : ["unknown_user" as const, "no"];
      });
    },

    removeUserValidate(jid, pass) {
      return measured("remove_user_validate", jid, async () => {
        const d = domainOf(jid);
        const a = d && authenticatorOf(d, jid);
        if (!a?.removeUser) return ["refused" as const, d ? "no" : "unknown_domain"];
        const checked = await bounded(a.checkPassword(jid, pass));
        if (!checked.ok) {
          if (checked.reason === "unknown_user") return ["unknown_user" as const, "no"];
          const delayMs = await guard.serverFailed(jid).catch(() => 0);
          if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
          return ["bad_password" as const, "no"];
        }
        const removed = await bounded(a.removeUser(jid));
        cache.dropUser(jid);
        return removed ? ["removed" as const, "ok"] : ["unknown_user" as const, "no"];
      });
    },

    async reload(config) {
      const next = await createAuthenticators(config, deps);
      const old = registry;
      registry = next;
      cache.clear();
      await closeAuthenticators(old);
    },

    async close() {
      listener.close();
      await closeAuthenticators(registry);
    },
  };
  return core;
}
