import { timingSafeEqual } from "node:crypto";
import { SignJWT } from "jose";
import type { Config } from "#common/config/schema.ts";
import { Hmac } from "#common/credentials/hmac.ts";
import type { Listener, Subscription } from "#common/db/listener.ts";
import type { Pool } from "#common/db/pool.ts";
import { durationMs } from "#common/durations.ts";
import type { Logger } from "#common/logger.ts";
import {
  type AppSession,
  endedAmong,
  ensureSigningKeys,
  isLive,
  isUuid,
  revokedSince,
  SESSION_KEYS_CHANNEL,
  SESSIONS_REVOKED_CHANNEL,
  sweepSessions,
} from "#common/users/app-sessions.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";

/**
 * Access tokens of app sessions (docs/api.md "Sessions", docs/security.md "App sessions and bearer tokens"):
 * compact JWTs (RFC 7519) signed HS256 (RFC 7518 §3.2) with the newest key of `app_session_keys`, header
 * `typ: at+jwt` (RFC 9068 §2.1) and an audience no other token of ours carries. One is checked without the
 * database: its signature, its expiry and this process's set of revoked sessions, which LISTEN
 * `app_sessions_revoked` keeps (#common/db/listener.ts) and which is reloaded from the table after every gap.
 * While the process has no whole notification stream, each token's session is looked up instead.
 *
 * Tokens are signed with jose's SignJWT (at a login or a refresh). They are verified here, on every app call,
 * by a strict check of the one form we issue (header exactly HS256 + our `typ` + a `kid` we hold, the HMAC
 * compared in constant time, then the claims) with the project's prepared HMAC (#common/credentials/hmac.ts):
 * jose's jwtVerify goes through WebCrypto's asynchronous verify and cost 88 µs a token on the project's
 * machine against 6 µs for this check, which made a bearer call dearer than a Basic one with a warm cache
 * (test/bench/app-bearer.bench.ts). The tests sign with jose, so the two stay interoperable.
 */

export const ACCESS_TOKEN_AUDIENCE = "xmpp-sidecars:app-api";
export const ACCESS_TOKEN_TYPE = "at+jwt";
const ALGORITHM = "HS256";
/** Looking a key up again for an unknown `kid` (a key made elsewhere a moment ago), at most this often. */
const KEY_RELOAD_MS = 5_000;
const PRUNE_MS = 60_000;
const SWEEP_MS = 3_600_000;

export type Verified =
  | { ok: true; jid: Jid; sessionId: string }
  /** malformed, tampered, signed with a key we do not have, for another audience */
  | { ok: false; reason: "invalid" }
  | { ok: false; reason: "expired" }
  /** a session revoked (logout, password change, disable, removal, a reused refresh token) or ended */
  | { ok: false; reason: "revoked" };

export interface AppSessions {
  readonly accessTtlMs: number;
  readonly refreshTtlMs: number;
  /** An access token of the session, and its life in seconds (never beyond the session's own end). */
  issue(session: Pick<AppSession, "id" | "domain" | "node" | "expiresAt">): Promise<{
    token: string;
    expiresIn: number;
  }>;
  /** A bearer token as an app presents it; throws only when what it needs (the keys) cannot be read. */
  verify(token: string): Promise<Verified>;
  /** Sessions this process revoked itself: refused here at once, before their NOTIFY comes back. */
  forget(ids: readonly string[]): void;
  close(): void;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;
const SIGNATURE_BYTES = 32;

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The TTLs of `services.httpUtility.sessions`, in milliseconds. */
export function sessionTtls(config: Pick<Config, "services">): { accessTtlMs: number; refreshTtlMs: number } {
  const s = config.services.httpUtility.sessions;
  return {
    accessTtlMs: durationMs(s.accessTtl) ?? 15 * 60_000,
    refreshTtlMs: durationMs(s.refreshTtl) ?? 30 * 86_400_000,
  };
}

export function createAppSessions(deps: {
  config: Pick<Config, "services">;
  pool: Pool;
  log: Logger;
  /** The process's LISTEN connection; without it every token's session is looked up in the database. */
  listener?: Listener | undefined;
  now?: () => number;
}): AppSessions {
  const { pool, log } = deps;
  const now = deps.now ?? Date.now;
  const { accessTtlMs, refreshTtlMs } = sessionTtls(deps.config);

  let signer: { id: string; secret: Uint8Array } | undefined;
  let verifiers = new Map<string, Hmac>();
  let loading: Promise<void> | undefined;
  let loadedAt = 0;
  /** session id → until when it must be refused (its tokens' longest life from when we heard of it) */
  const revoked = new Map<string, number>();
  /** sessions this process accepted a token of, with that token's end: checked again after a gap */
  const seen = new Map<string, number>();
  let synced = false;
  /** bumped at every gap: a reload begun before one does not count as done after it */
  let generation = 0;
  let syncing: Promise<void> | undefined;

  async function loadKeys(): Promise<void> {
    const keys = await ensureSigningKeys(pool);
    const next = new Map<string, Hmac>();
    for (const k of keys) next.set(k.id, new Hmac("sha256", k.secret));
    const newest = keys[0];
    if (!newest) throw new Error("no signing key for app sessions");
    verifiers = next;
    signer = { id: newest.id, secret: new Uint8Array(newest.secret) };
    loadedAt = now();
  }

  /** The keys, read once (and again when asked); a failed read is retried by the next call. */
  function keysReady(reload = false): Promise<void> {
    if (!loading || reload) {
      const p = loadKeys();
      loading = p;
      p.catch(() => {
        if (loading === p) loading = undefined;
      });
    }
    return loading;
  }

  const subscription: Subscription | undefined = deps.listener?.subscribe(
    [SESSIONS_REVOKED_CHANNEL, SESSION_KEYS_CHANNEL],
    {
      onMessage(channel, payload) {
        if (channel === SESSIONS_REVOKED_CHANNEL) {
          revoked.set(payload, now() + accessTtlMs);
          seen.delete(payload);
        } else {
          keysReady(true).catch((err: Error) =>
            log.warn({ err: err.message }, "app session keys could not be reloaded"),
          );
        }
      },
      onReconnect() {
        // what was revoked while we were not listening is read again before the set is trusted
        synced = false;
        generation++;
        keysReady(true).catch(() => {});
      },
    },
  );

  /** Revocations made while this process was not listening (or before it was): from the table. */
  function resync(): Promise<void> {
    syncing ??= (async () => {
      const started = generation;
      const ids = await revokedSince(pool, accessTtlMs);
      const ended = await endedAmong(pool, [...seen.keys()]);
      for (const id of [...ids, ...ended]) {
        revoked.set(id, now() + accessTtlMs);
        seen.delete(id);
      }
      if (generation === started) synced = true;
    })().finally(() => {
      syncing = undefined;
    });
    return syncing;
  }

  const prune = setInterval(() => {
    const t = now();
    for (const [id, until] of revoked) if (until < t) revoked.delete(id);
    for (const [id, until] of seen) if (until < t) seen.delete(id);
  }, PRUNE_MS);
  prune.unref();
  // sessions that ended, used refresh tokens, superseded keys: every process sweeps now and then (idempotent)
  const sweep = setInterval(() => {
    sweepSessions(pool, { accessTtlMs, refreshTtlMs }).catch((err: Error) =>
      log.warn({ err: err.message }, "app session sweep failed"),
    );
  }, SWEEP_MS);
  sweep.unref();

  /** The key of a `kid`, read again (at most every KEY_RELOAD_MS) when it is one this process has not seen. */
  async function keyOf(kid: string): Promise<Hmac | undefined> {
    const key = verifiers.get(kid);
    if (key || now() - loadedAt <= KEY_RELOAD_MS) return key;
    await keysReady(true);
    return verifiers.get(kid);
  }

  return {
    accessTtlMs,
    refreshTtlMs,

    async issue(session) {
      if (!signer) await keysReady();
      const s = signer as { id: string; secret: Uint8Array };
      const iat = Math.floor(now() / 1000);
      const exp = Math.min(
        iat + Math.floor(accessTtlMs / 1000),
        Math.floor(session.expiresAt.getTime() / 1000),
      );
      const token = await new SignJWT({ sid: session.id })
        .setProtectedHeader({ alg: ALGORITHM, kid: s.id, typ: ACCESS_TOKEN_TYPE })
        .setSubject(`${session.node}@${session.domain}`)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(s.secret);
      return { token, expiresIn: Math.max(0, exp - iat) };
    },

    async verify(token) {
      // once read, the keys in hand serve while a reload (a new key, a gap) is under way or failing
      if (!signer) await keysReady();
      if (!TOKEN_SHAPE.test(token)) return { ok: false, reason: "invalid" };
      const first = token.indexOf(".");
      const last = token.lastIndexOf(".");
      // the header: exactly what we sign with, so no other algorithm (none, RS256 with our key as a public
      // key…) and no extension (`crit`) is ever considered
      const header = decodeJson(token.slice(0, first));
      if (
        !header ||
        header.alg !== ALGORITHM ||
        header.typ !== ACCESS_TOKEN_TYPE ||
        typeof header.kid !== "string" ||
        Object.keys(header).length !== 3
      ) {
        return { ok: false, reason: "invalid" };
      }
      const key = await keyOf(header.kid);
      if (!key) return { ok: false, reason: "invalid" };
      const signature = Buffer.from(token.slice(last + 1), "base64url");
      const expected = key.digest(token.slice(0, last));
      if (signature.length !== SIGNATURE_BYTES || !timingSafeEqual(signature, expected)) {
        return { ok: false, reason: "invalid" };
      }
      const claims = decodeJson(token.slice(first + 1, last));
      const { sub, sid, exp, iat, aud } = claims ?? {};
      if (
        aud !== ACCESS_TOKEN_AUDIENCE ||
        typeof sub !== "string" ||
        typeof sid !== "string" ||
        !isUuid(sid) ||
        typeof exp !== "number" ||
        typeof iat !== "number"
      ) {
        return { ok: false, reason: "invalid" };
      }
      if (now() >= exp * 1000) return { ok: false, reason: "expired" };
      let jid: Jid;
      try {
        jid = parseJid(sub);
      } catch {
        return { ok: false, reason: "invalid" };
      }
      if (revoked.has(sid)) return { ok: false, reason: "revoked" };
      if (!subscription?.connected() || !synced) {
        // a gap in the notifications (or none yet): this token's session from the table, and the set read again
        if (subscription?.connected()) resync().catch(() => {});
        if (!(await isLive(pool, sid))) return { ok: false, reason: "revoked" };
      }
      if (!seen.has(sid)) seen.set(sid, exp * 1000);
      return { ok: true, jid, sessionId: sid };
    },

    forget(ids) {
      for (const id of ids) {
        revoked.set(id, now() + accessTtlMs);
        seen.delete(id);
      }
    },

    close() {
      clearInterval(prune);
      clearInterval(sweep);
      subscription?.close();
    },
  };
}
