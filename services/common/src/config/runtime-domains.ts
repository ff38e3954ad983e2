import type { Listener } from "../db/listener.ts";
import type { Pool } from "../db/pool.ts";
import type { Logger } from "../logger.ts";
import { formatIssues } from "../zod-issues.ts";
import { ConfigError, type LoadOptions, loadConfig } from "./load.ts";
import { type Config, type DomainConfig, domainNameSchema, domainSchema } from "./schema.ts";

/**
 * Domains added at runtime (docs/operations.md "Adding a domain"): rows of `runtime_domains`
 * (migrations/1764680000050_runtime-domains.sql), each a domain entry as config/<env>.json holds one, checked
 * by the same schema. A process serves the files' domains and the rows together, a file's domain winning over
 * a row of the same name (with a warning), all checked as one config (schema.ts `domainReferenceProblems`).
 * A trigger NOTIFYs `domains_changed` on every change of the table; each process LISTENs on its one listener
 * connection and loads its domains again through the path SIGHUP takes (service.ts).
 */

export const DOMAINS_CHANNEL = "domains_changed";

export interface RuntimeDomainRow {
  name: string;
  /** As stored: the entry as given, without the schema's defaults. */
  config: unknown;
  updatedAt: Date;
  updatedBy: string | null;
}

export type DomainSource = "config" | "database";

export interface DomainsView {
  /** Every domain served, by name, with its effective entry. */
  domains: { name: string; source: DomainSource; config: DomainConfig; row?: RuntimeDomainRow }[];
  /** Rows a config-file domain of the same name hides. */
  hidden: RuntimeDomainRow[];
  /** Rows that do not parse (written by hand, or by another version): left out. */
  invalid: { row: RuntimeDomainRow; problems: string[] }[];
  /** What is wrong with the files and the rows taken together (none when the services can load them). */
  problems: string[];
}

export type DomainCheck = { ok: true; config: Config } | { ok: false; problems: string[] };

export interface DomainsWatch {
  /** Loads the domains again now (SIGHUP); rejects when they cannot be loaded, leaving things as they were. */
  reload(): Promise<void>;
  close(): void;
}

export interface RuntimeDomains {
  /**
   * The config as the files and the environment say now, with the database's domains: what the process
   * serves. Says once per change of a row that a file hides it or that it does not parse. Throws a ConfigError.
   */
  load(): Promise<Config>;
  /** The files' and the database's domains as they are now, for `sidecars domains list` and the admin API. */
  view(): Promise<DomainsView>;
  /** Whether `name` may become `value` (undefined: be removed), checked as `load` would take it. */
  check(name: string, value: unknown): Promise<DomainCheck>;
  /**
   * `onChange` with a fresh `load()` after every change of the table, after a gap in the LISTEN connection,
   * and at `reload()`: one at a time, changes during one coalesced into one more. A notified change that does
   * not load is logged and leaves things as they were.
   */
  watch(listener: Listener, onChange: (config: Config) => void | Promise<void>): DomainsWatch;
}

const TABLE_MISSING = "42P01";

export async function readRuntimeDomains(pool: Pool): Promise<RuntimeDomainRow[]> {
  const { rows } = await pool.query<{
    name: string;
    config: unknown;
    updated_at: Date;
    updated_by: string | null;
  }>("SELECT name, config, updated_at, updated_by FROM runtime_domains ORDER BY name");
  return rows.map((r) => ({
    name: r.name,
    config: r.config,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  }));
}

/** Adds a row; false when one of that name exists. */
export async function insertRuntimeDomain(pool: Pool, name: string, config: unknown, by: string) {
  const r = await pool.query(
    "INSERT INTO runtime_domains (name, config, updated_by) VALUES ($1, $2::jsonb, $3) ON CONFLICT (name) DO NOTHING",
    [name, JSON.stringify(config), by],
  );
  return r.rowCount === 1;
}

/** Replaces a row's entry; false when there is no such row. */
export async function updateRuntimeDomain(pool: Pool, name: string, config: unknown, by: string) {
  const r = await pool.query(
    "UPDATE runtime_domains SET config = $2::jsonb, updated_at = now(), updated_by = $3 WHERE name = $1",
    [name, JSON.stringify(config), by],
  );
  return r.rowCount === 1;
}

/** Adds or replaces a row: true when it is new. */
export async function saveRuntimeDomain(pool: Pool, name: string, config: unknown, by: string) {
  const r = await pool.query<{ created: boolean }>(
    `INSERT INTO runtime_domains (name, config, updated_by) VALUES ($1, $2::jsonb, $3)
     ON CONFLICT (name) DO UPDATE SET config = EXCLUDED.config, updated_at = now(), updated_by = EXCLUDED.updated_by
     RETURNING (xmax = 0) AS created`,
    [name, JSON.stringify(config), by],
  );
  return r.rows[0]?.created === true;
}

export async function deleteRuntimeDomain(pool: Pool, name: string): Promise<boolean> {
  return (await pool.query("DELETE FROM runtime_domains WHERE name = $1", [name])).rowCount === 1;
}

/** A domain's name and entry checked as the config file's `domains.<name>` is: the same schema, the same lines. */
export function parseDomainEntry(
  name: string,
  value: unknown,
): { ok: true; domain: DomainConfig } | { ok: false; problems: string[] } {
  const n = domainNameSchema.safeParse(name);
  if (!n.success) return { ok: false, problems: n.error.issues.map((i) => `"${name}": ${i.message}`) };
  const d = domainSchema.safeParse(value, { reportInput: true });
  if (!d.success) {
    return {
      ok: false,
      problems: formatIssues(d.error.issues, { at: `domains.${name}`, schema: domainSchema }),
    };
  }
  return { ok: true, domain: d.data };
}

/** Puts `next`'s domains in `target` in place: whatever reads `target.domains` per request sees them. */
export function replaceDomains(target: Pick<Config, "domains">, next: Pick<Config, "domains">): void {
  for (const name of Object.keys(target.domains)) {
    if (!Object.hasOwn(next.domains, name)) delete target.domains[name];
  }
  Object.assign(target.domains, next.domains);
}

/** Calls to `fn` one at a time; calls during a run share one more run after it. */
function serialised(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const start = () => {
    const run = fn();
    running = run.then(
      () => {
        running = undefined;
      },
      () => {
        running = undefined;
      },
    );
    return run;
  };
  return () => {
    if (!running) return start();
    queued ??= running.then(() => {
      queued = undefined;
      return start();
    });
    return queued;
  };
}

const fingerprint = (rows: readonly RuntimeDomainRow[]) =>
  JSON.stringify(rows.map((r) => [r.name, r.updatedAt.toISOString(), r.config]));

export function createRuntimeDomains(deps: { load: LoadOptions; pool: Pool; log: Logger }): RuntimeDomains {
  const { pool, log } = deps;
  const told = new Set<string>();
  let toldMissing = false;
  let loaded: string | undefined;

  async function rows(): Promise<RuntimeDomainRow[]> {
    try {
      return await readRuntimeDomains(pool);
    } catch (err) {
      if ((err as { code?: unknown }).code !== TABLE_MISSING) throw err;
      if (!toldMissing) {
        toldMissing = true;
        log.warn(
          "the table runtime_domains is missing: run `npx sidecars migrate`; serving the files' domains only",
        );
      }
      return [];
    }
  }

  /** The files' domains and the rows, each parsed on its own; `stored`: the rows that join the files'. */
  function split(all: readonly RuntimeDomainRow[]) {
    const files = loadConfig({ ...deps.load, databaseDomains: "unread" });
    const view: DomainsView = { domains: [], hidden: [], invalid: [], problems: [] };
    const stored: Record<string, unknown> = {};
    for (const [name, config] of Object.entries(files.domains))
      view.domains.push({ name, source: "config", config });
    for (const row of all) {
      if (Object.hasOwn(files.domains, row.name)) {
        view.hidden.push(row);
        const entry = view.domains.find((d) => d.name === row.name);
        if (entry) entry.row = row;
        continue;
      }
      const parsed = parseDomainEntry(row.name, row.config);
      if (!parsed.ok) {
        view.invalid.push({ row, problems: parsed.problems });
        continue;
      }
      stored[row.name] = row.config;
      view.domains.push({ name: row.name, source: "database", config: parsed.domain, row });
    }
    view.domains.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { view, stored };
  }

  const once = (what: string, row: RuntimeDomainRow, say: () => void) => {
    const key = `${what}\u0000${row.name}\u0000${row.updatedAt.toISOString()}`;
    if (told.has(key)) return;
    told.add(key);
    say();
  };

  async function load(): Promise<Config> {
    const all = await rows();
    const { view, stored } = split(all);
    const config = loadConfig({ ...deps.load, databaseDomains: stored });
    loaded = fingerprint(all);
    for (const row of view.hidden) {
      once("hidden", row, () =>
        log.warn(
          { domain: row.name },
          `domain ${row.name} is in the config files and in the database: the config files win; remove one (\`sidecars domains remove ${row.name}\`, or its entry in the files)`,
        ),
      );
    }
    for (const { row, problems } of view.invalid) {
      once("invalid", row, () =>
        log.error(
          { domain: row.name },
          `domain ${row.name}: its database row is not served, as it is not valid: ${problems.join("; ")}: fix it with \`sidecars domains set\``,
        ),
      );
    }
    return config;
  }

  return {
    load,

    async view() {
      const all = await rows();
      const { view, stored } = split(all);
      try {
        loadConfig({ ...deps.load, databaseDomains: stored });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        view.problems = err.problems;
      }
      return view;
    },

    async check(name, value) {
      const all = (await rows()).filter((r) => r.name !== name);
      if (value !== undefined) {
        const parsed = parseDomainEntry(name, value);
        if (!parsed.ok) return parsed;
        all.push({ name, config: value, updatedAt: new Date(), updatedBy: null });
      }
      try {
        return { ok: true, config: loadConfig({ ...deps.load, databaseDomains: split(all).stored }) };
      } catch (err) {
        if (err instanceof ConfigError) return { ok: false, problems: err.problems };
        throw err;
      }
    },

    watch(listener, onChange) {
      let closed = false;
      const reload = serialised(async () => {
        if (closed) return;
        const next = await load();
        if (!closed) await onChange(next);
      });
      const notified = () => {
        reload().catch((err) =>
          log.error({ err }, "domains not reloaded: the domains of before stay until this is fixed"),
        );
      };
      const sub = listener.subscribe([DOMAINS_CHANNEL], { onMessage: notified, onReconnect: notified });
      // LISTEN takes effect a moment after subscribing (or once the database is up): a change made before
      // then was heard by no one, so look once, and load again if the rows are not those loaded last
      const timer = setInterval(() => {
        if (!sub.connected()) return;
        clearInterval(timer);
        rows().then(
          (all) => {
            if (fingerprint(all) !== loaded) notified();
          },
          () => notified(),
        );
      }, 50);
      timer.unref();
      return {
        reload,
        close() {
          closed = true;
          clearInterval(timer);
          sub.close();
        },
      };
    },
  };
}
