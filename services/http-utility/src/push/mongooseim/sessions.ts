import type { PushConfig } from "#common/config/push-schema.ts";
import type { Logger } from "#common/logger.ts";

/**
 * Who is online, as MongooseIM 2.1.0 says: its chat-message hook (`mod_http_notification`) fires for every
 * one-to-one message, whether the receiver is connected or not, so without this a user chatting in the app
 * gets a push for each message. The admin REST API of `mod_commands` answers `GET <api>/sessions/<host>` with
 * the full JIDs of the host's sessions (`list_sessions`, a JSON array of `user@host/resource`). One list per
 * host is fetched at a time and kept `cacheMs`, so a burst of messages costs one call. MongooseIM 6.x needs
 * none of this: `mod_event_pusher_push` pushes for offline users only (docs/push.md).
 */

export type SessionsConfig = NonNullable<PushConfig["hooks"]["sessions"]>;

export interface SessionChecker {
  /** true: a session is open (no push needed); false: none; undefined: could not tell (see `onError`). */
  online(user: { domain: string; node: string }): Promise<boolean | undefined>;
}

interface HostList {
  at: number;
  users: Promise<Set<string> | undefined>;
}

export function createSessionChecker(config: SessionsConfig, log: Logger): SessionChecker {
  const base = config.url.replace(/\/+$/, "");
  const headers = { accept: "application/json" };
  const hosts = new Map<string, HostList>();

  async function fetchHost(host: string): Promise<Set<string> | undefined> {
    try {
      const r = await fetch(`${base}/sessions/${encodeURIComponent(host)}`, {
        headers,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const list: unknown = await r.json();
      if (!Array.isArray(list)) throw new Error("the answer is not a list of JIDs");
      const users = new Set<string>();
      for (const jid of list) {
        if (typeof jid !== "string") continue;
        // user@host/resource → user@host; JIDs compare case-insensitively in their user and host parts
        const bare = jid.split("/", 1)[0]?.toLowerCase();
        if (bare) users.add(bare);
      }
      return users;
    } catch (err) {
      log.warn(
        { host, problem: (err as Error).message, onError: config.onError },
        "MongooseIM sessions unavailable: pushing as configured by push.hooks.sessions.onError",
      );
      return undefined;
    }
  }

  return {
    async online({ domain, node }) {
      const now = Date.now();
      let entry = hosts.get(domain);
      if (!entry || now - entry.at >= config.cacheMs) {
        entry = { at: now, users: fetchHost(domain) };
        hosts.set(domain, entry);
      }
      // a failed fetch is kept as long as a list would be: a burst of messages while MongooseIM's API is
      // away costs one call per host and period, not one each
      const users = await entry.users;
      return users?.has(`${node}@${domain}`.toLowerCase());
    },
  };
}
