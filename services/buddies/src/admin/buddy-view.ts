import type { Pool } from "#common/db/pool.ts";
import type { DefinitionEntry } from "../runner/definitions.ts";
import type { Runner } from "../runner/runner.ts";

/**
 * What the admin API says about a buddy: its definition, the cluster's view of it (`buddy_leases`, written
 * by whichever runner owns it) and, for this runner's own buddies, the live state, which is fresher.
 */

export interface RunnerView {
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  heartbeatAt: string;
  adminUrl: string | null;
  live: boolean;
}

export interface BuddyView {
  jid: string;
  domain: string;
  username: string;
  kind: string;
  source: "config" | "table";
  state: "online" | "connecting" | "backoff" | "stopped" | "unowned";
  stateSince: string;
  connectedSince: string | null;
  lastError: string | null;
  messagesIn: number;
  messagesOut: number;
  reconnects: number;
  stopped: boolean;
  rooms: string[];
  owner: { id: string; host: string; pid: number } | null;
  /** What the edit form needs: where the password is (never the password), options, nick. */
  definition: { password: unknown; options: Record<string, unknown>; nick: string | null } | null;
}

interface LeaseRow {
  domain: string;
  username: string;
  owner: string | null;
  live_owner: boolean;
  stopped: boolean;
  state: string;
  state_since: Date;
  connected_since: Date | null;
  last_error: string | null;
  messages_in: string;
  messages_out: string;
  reconnects: number;
}

export async function clusterView(
  pool: Pool,
  runner: Runner,
  definitions: ReadonlyMap<string, DefinitionEntry>,
  leaseSeconds: number,
): Promise<{ buddies: BuddyView[]; runners: RunnerView[] }> {
  const [{ rows: leases }, { rows: runnerRows }] = await Promise.all([
    pool.query<LeaseRow>(
      `SELECT l.*, (l.expires_at > now()) AS live_owner FROM buddy_leases l ORDER BY domain, username`,
    ),
    pool.query<{
      id: string;
      host: string;
      pid: number;
      started_at: Date;
      heartbeat_at: Date;
      admin_url: string | null;
      live: boolean;
    }>(
      `SELECT *, heartbeat_at > now() - make_interval(secs => $1) AS live FROM buddy_runners ORDER BY started_at`,
      [leaseSeconds],
    ),
  ]);
  const runners = new Map(runnerRows.map((r) => [r.id, r]));
  const byJid = new Map(leases.map((l) => [`${l.username}@${l.domain}`, l]));
  const buddies = [...definitions.values()].map((d): BuddyView => {
    const l = byJid.get(d.jid);
    const local = runner.session(d.jid);
    const ownerRow = l?.owner && l.live_owner ? runners.get(l.owner) : undefined;
    const base = {
      jid: d.jid,
      domain: d.domain,
      username: d.username,
      kind: d.definition?.kind ?? "(invalid)",
      source: d.source,
      stopped: l?.stopped ?? false,
      rooms: d.definition?.rooms ?? [],
      owner: ownerRow ? { id: ownerRow.id, host: ownerRow.host, pid: ownerRow.pid } : null,
      definition: d.definition
        ? { password: d.definition.password, options: d.definition.options, nick: d.definition.nick ?? null }
        : null,
    };
    if (local) {
      return {
        ...base,
        state: local.state,
        stateSince: local.stateSince.toISOString(),
        connectedSince: local.connectedSince?.toISOString() ?? null,
        lastError: local.lastError,
        messagesIn: local.messagesIn,
        messagesOut: local.messagesOut,
        reconnects: local.reconnects,
      };
    }
    const owned = l && ownerRow;
    return {
      ...base,
      state: owned ? (l.state as BuddyView["state"]) : l?.stopped ? "stopped" : "unowned",
      stateSince: (l?.state_since ?? new Date()).toISOString(),
      connectedSince: owned ? (l.connected_since?.toISOString() ?? null) : null,
      lastError: d.problem ?? l?.last_error ?? null,
      messagesIn: Number(l?.messages_in ?? 0),
      messagesOut: Number(l?.messages_out ?? 0),
      reconnects: l?.reconnects ?? 0,
    };
  });
  return {
    buddies,
    runners: runnerRows.map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      startedAt: r.started_at.toISOString(),
      heartbeatAt: r.heartbeat_at.toISOString(),
      adminUrl: r.admin_url,
      live: r.live,
    })),
  };
}

/** The admin URL of the live runner that owns `jid`, when it is not this one. */
export async function ownerUrl(pool: Pool, runner: Runner, jid: string): Promise<string | null | undefined> {
  const at = jid.indexOf("@");
  const { rows } = await pool.query<{ owner: string; admin_url: string | null }>(
    `SELECT l.owner, r.admin_url FROM buddy_leases l JOIN buddy_runners r ON r.id = l.owner
     WHERE l.domain = $1 AND l.username = $2 AND l.expires_at > now()`,
    [jid.slice(at + 1), jid.slice(0, at)],
  );
  const row = rows[0];
  if (!row || row.owner === runner.id) return undefined;
  return row.admin_url;
}
