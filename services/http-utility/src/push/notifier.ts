import type { PushMessage, PushService } from "./senders/sender.ts";
import type { Owner, TokenRow } from "./token-store.ts";

/**
 * What every way of pushing (the `send` endpoint, channel broadcasts, MongooseIM's hooks and the
 * MongoosePush API) goes through: the sender of the token's app and service, retries on 429/5xx honouring
 * Retry-After (bounded by `push.retry`), the badge kept per token, dead tokens forgotten, metrics counted.
 */

export type TokenStatus = "sent" | "dead_token" | "failed" | "gave_up" | "no_sender";

export interface TokenResult {
  service: PushService;
  token: string;
  status: TokenStatus;
  reason?: string;
  /** The provider's message id when sent. */
  id?: string;
}

export interface Notifier {
  /** Pushes to one stored token. `message.badge` undefined: the stored badge plus one (alerts only). */
  toToken(row: TokenRow, message: PushMessage): Promise<TokenResult>;
  /** Pushes to many tokens (a fan-out): the badges counted in one statement, `limit` pushes in flight. */
  toTokens(rows: readonly TokenRow[], message: PushMessage, limit?: number): Promise<TokenResult[]>;
  /** Pushes to all of a user's tokens (or the one named), in parallel; one result per token. */
  toUser(owner: Owner, message: PushMessage, token?: string): Promise<TokenResult[]>;
}
