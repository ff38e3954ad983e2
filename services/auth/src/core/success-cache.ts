import { randomBytes } from "node:crypto";
import { Hmac } from "#common/credentials/hmac.ts";
import type { Jid } from "#common/users/jid.ts";

/**
 * What the auth service remembers per user, for a domain's TTL, forgotten together when the user changes:
 * get_password answers that are SCRAM serializations (never cleartext), and successful password checks.
 * Successful password checks are remembered Keyed by an HMAC of user and password under a
 * key that lives only in this process: the password itself is never kept. Failures are never cached.
 */
export class SuccessCache {
  private readonly key = new Hmac("sha256", randomBytes(32));
  private readonly entries = new Map<string, { until: number; user: string }>();
  private readonly byUser = new Map<string, Set<string>>();
  private readonly answers = new Map<string, { until: number; text: string }>();
  /** Raised whenever a user's entries are dropped: a check begun before must not store its result. */
  private readonly generations = new Map<string, number>();
  private epoch = 0;
  private readonly maxEntries: number;

  constructor(maxEntries = 100_000) {
    this.maxEntries = maxEntries;
  }

  private userKey(jid: Jid): string {
    return `${jid.domain}\u0000${jid.node}`;
  }

  private entryKey(jid: Jid, password: string): string {
    return this.key.digestBase64(`${this.userKey(jid)}\u0000${password}`);
  }

  has(jid: Jid, password: string, now = Date.now()): boolean {
    const k = this.entryKey(jid, password);
    const e = this.entries.get(k);
    if (!e) return false;
    if (e.until > now) return true;
    this.delete(k, e.user);
    return false;
  }

  /** Note this before asking the backend; pass it to `put`. */
  generation(jid: Jid): string {
    return `${this.epoch}:${this.generations.get(this.userKey(jid)) ?? 0}`;
  }

  /** Remembered for `ttlMs`, and never past `validUntilMs` (a token's expiry) when given. */
  put(
    jid: Jid,
    password: string,
    ttlMs: number,
    generation: string,
    validUntilMs?: number,
    now = Date.now(),
  ): void {
    const until = Math.min(now + ttlMs, validUntilMs ?? Number.POSITIVE_INFINITY);
    if (ttlMs <= 0 || until <= now || generation !== this.generation(jid)) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.entries().next().value;
      if (oldest) this.delete(oldest[0], oldest[1].user);
    }
    const k = this.entryKey(jid, password);
    const user = this.userKey(jid);
    this.entries.delete(k); // re-insert at the end: Map order is age order
    this.entries.set(k, { until, user });
    const keys = this.byUser.get(user) ?? new Set<string>();
    keys.add(k);
    this.byUser.set(user, keys);
  }

  /** A get_password answer remembered for the user, if still fresh. */
  answer(jid: Jid, now = Date.now()): string | undefined {
    const user = this.userKey(jid);
    const a = this.answers.get(user);
    if (a && a.until > now) return a.text;
    if (a) this.answers.delete(user);
    return undefined;
  }

  putAnswer(jid: Jid, text: string, ttlMs: number, generation: string, now = Date.now()): void {
    if (ttlMs <= 0 || generation !== this.generation(jid)) return;
    if (this.answers.size >= this.maxEntries) {
      const oldest = this.answers.keys().next().value;
      if (oldest !== undefined) this.answers.delete(oldest);
    }
    this.answers.set(this.userKey(jid), { until: now + ttlMs, text });
  }

  dropUser(jid: Jid): void {
    const user = this.userKey(jid);
    this.answers.delete(user);
    this.generations.set(user, (this.generations.get(user) ?? 0) + 1);
    for (const k of this.byUser.get(user) ?? []) this.entries.delete(k);
    this.byUser.delete(user);
  }

  clear(): void {
    this.epoch++;
    this.generations.clear();
    this.answers.clear();
    this.entries.clear();
    this.byUser.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private delete(k: string, user: string): void {
    this.entries.delete(k);
    const keys = this.byUser.get(user);
    keys?.delete(k);
    if (keys?.size === 0) this.byUser.delete(user);
  }
}
