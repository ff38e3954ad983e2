import { BUDDY_NAME, type BuddyDefinition, buddyDefinition } from "#common/config/buddies-schema.ts";
import { buddyHomeProblem, type Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { formatIssues } from "#common/zod-issues.ts";
import type { ResolvedBuddy } from "./buddy-session.ts";

/**
 * The buddies to run: config's `buddies.domains.<domain>.definitions`, then the `buddies` table, whose row
 * wins for the same JID so buddies can be added and changed at runtime. A row that no longer parses (or
 * names a domain this config does not serve) is kept as a problem to show, not a reason to stop the rest.
 */

export interface DefinitionEntry {
  jid: string;
  domain: string;
  username: string;
  source: "config" | "table";
  definition: BuddyDefinition | undefined;
  /** Ready to run, or undefined with `problem` saying why not. */
  buddy: ResolvedBuddy | undefined;
  problem: string | undefined;
  /** Changes whenever anything that needs a reconnect changes. */
  fingerprint: string;
}

export const jidOf = (username: string, domain: string) => `${username}@${domain}`.toLowerCase();

/** `user@domain` split and checked, or an error message. */
export function parseBuddyJid(text: string): { username: string; domain: string } | string {
  const at = text.indexOf("@");
  const username = text.slice(0, at).toLowerCase();
  const domain = text.slice(at + 1).toLowerCase();
  if (at < 1 || !BUDDY_NAME.test(username) || !/^[a-z0-9.-]+$/.test(domain)) {
    return `"${text.slice(0, 100)}" is not a buddy JID: use username@domain, the username being lower-case letters, digits, . _ -`;
  }
  return { username, domain };
}

/** Why `domain` cannot host `username` under this config, or undefined. */
export function definitionProblem(config: Config, domain: string, username: string): string | undefined {
  const served = config.domains[domain];
  if (!served) return `${domain} is not a domain of this service: add it to \`domains\` in config first`;
  return buddyHomeProblem(served, domain, username);
}

export function resolveBuddy(
  config: Config,
  domain: string,
  username: string,
  d: BuddyDefinition,
): ResolvedBuddy {
  const perDomain = config.buddies.domains[domain];
  return {
    domain,
    username,
    jid: jidOf(username, domain),
    kind: d.kind,
    password: d.password,
    options: d.options,
    rooms: d.rooms,
    nick: d.nick ?? username,
    service: perDomain?.service ?? config.buddies.service,
    // a domain's `tls` holds only what it changes
    tls: { ...config.buddies.tls, ...perDomain?.tls },
  };
}

function entry(
  config: Config,
  domain: string,
  username: string,
  source: "config" | "table",
  raw: unknown,
): DefinitionEntry {
  const jid = jidOf(username, domain);
  const parsed = buddyDefinition.safeParse(raw);
  if (!parsed.success) {
    const problem = `invalid definition: ${formatIssues(parsed.error.issues, { schema: buddyDefinition }).join("; ")}`;
    return {
      jid,
      domain,
      username,
      source,
      definition: undefined,
      buddy: undefined,
      problem,
      fingerprint: problem,
    };
  }
  const problem = definitionProblem(config, domain, username);
  const buddy = problem ? undefined : resolveBuddy(config, domain, username, parsed.data);
  return {
    jid,
    domain,
    username,
    source,
    definition: parsed.data,
    buddy,
    problem,
    fingerprint: JSON.stringify(buddy ?? problem),
  };
}

export interface DefinitionRow {
  domain: string;
  username: string;
  kind: string;
  password: unknown;
  options: unknown;
  rooms: unknown;
  nick: string | null;
}

export async function loadDefinitions(pool: Pool, config: Config): Promise<Map<string, DefinitionEntry>> {
  const all = new Map<string, DefinitionEntry>();
  for (const [domain, d] of Object.entries(config.buddies.domains)) {
    for (const [username, def] of Object.entries(d.definitions)) {
      const e = entry(config, domain, username, "config", def);
      all.set(e.jid, e);
    }
  }
  const { rows } = await pool.query<DefinitionRow>(
    "SELECT domain, username, kind, password, options, rooms, nick FROM buddies ORDER BY domain, username",
  );
  for (const r of rows) {
    const raw = {
      kind: r.kind,
      password: r.password,
      options: r.options,
      rooms: r.rooms,
      ...(r.nick ? { nick: r.nick } : {}),
    };
    const e = entry(config, r.domain, r.username, "table", raw);
    all.set(e.jid, e);
  }
  return all;
}

/** Adds or replaces a runtime definition; true when it is new. */
export async function saveDefinition(
  pool: Pool,
  domain: string,
  username: string,
  d: BuddyDefinition,
): Promise<boolean> {
  const { rows } = await pool.query<{ inserted: boolean }>(
    `INSERT INTO buddies (domain, username, kind, password, options, rooms, nick)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (domain, username) DO UPDATE SET kind = EXCLUDED.kind, password = EXCLUDED.password,
       options = EXCLUDED.options, rooms = EXCLUDED.rooms, nick = EXCLUDED.nick, updated_at = now()
     RETURNING (xmax = 0) AS inserted`,
    [
      domain,
      username,
      d.kind,
      JSON.stringify(d.password),
      JSON.stringify(d.options),
      JSON.stringify(d.rooms),
      d.nick ?? null,
    ],
  );
  return rows[0]?.inserted ?? false;
}

/** Removes a runtime definition; false when there was none. */
export async function deleteDefinition(pool: Pool, domain: string, username: string): Promise<boolean> {
  const r = await pool.query("DELETE FROM buddies WHERE domain = $1 AND username = $2", [domain, username]);
  return (r.rowCount ?? 0) > 0;
}
