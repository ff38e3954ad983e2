import type { Agent } from "node:https";
import { JWT } from "google-auth-library";

/**
 * OAuth 2.0 access tokens of a service account for FCM: google-auth-library's JWT client makes the
 * JWT-bearer grant (RFC 7523) to Google's token endpoint. The token is kept here and asked again five minutes
 * before it expires, one request at a time however many sends are waiting, so a send reads a string.
 */

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
/** Ask for a new token this long before the current one expires (google-auth-library's own default). */
const EAGER_REFRESH_MS = 5 * 60_000;

export interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
}

export interface AccessTokens {
  /** `Bearer <token>`: the cached one, or a new one; rejects with google-auth-library's error. */
  authorization(): string | Promise<string>;
  /** Forgets the cached token (FCM answered 401 to it): the next send asks for a new one. */
  forget(): void;
}

export function accessTokens(key: ServiceAccountKey, agent: Agent | undefined): AccessTokens {
  const client = new JWT({
    email: key.client_email,
    key: key.private_key,
    ...(key.private_key_id ? { keyId: key.private_key_id } : {}),
    scopes: [SCOPE],
    ...(agent ? { transporterOptions: { agent } } : {}),
  });
  let cached: { header: string; refreshAt: number } | undefined;
  let pending: Promise<string> | undefined;

  const refresh = (): Promise<string> => {
    pending ??= client
      .authorize()
      .then((credentials) => {
        if (!credentials.access_token) throw new Error("the token endpoint answered no access_token");
        const expiresAt = credentials.expiry_date ?? Date.now() + 3600_000;
        const header = `Bearer ${credentials.access_token}`;
        cached = { header, refreshAt: expiresAt - EAGER_REFRESH_MS };
        return header;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  return {
    authorization() {
      if (cached && Date.now() < cached.refreshAt) return cached.header;
      return refresh();
    },
    forget() {
      cached = undefined;
    },
  };
}
