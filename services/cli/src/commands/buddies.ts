import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { buddyDefinition } from "#common/config/buddies-schema.ts";
import { createLogger } from "#common/logger.ts";
import { fromRoot } from "#common/paths.ts";
import { parseOptions } from "#common/plugins/problems.ts";
import { formatIssues } from "#common/zod-issues.ts";
import { createKindRegistry } from "../../../buddies/src/kinds/registry.ts";
import { BUDDY_ACTIONS, type BuddyAction, requestAction } from "../../../buddies/src/runner/actions.ts";
import {
  definitionProblem,
  deleteDefinition,
  loadDefinitions,
  parseBuddyJid,
  saveDefinition,
} from "../../../buddies/src/runner/definitions.ts";
import { type CliContext, CliError } from "../context.ts";
import { keySha256 } from "./api-keys.ts";

/**
 * `sidecars buddies`: the runtime definitions (the `buddies` table, which wins over config), what the
 * runners are doing with them, operator actions, and the keys of the admin API and of the HTTP hooks.
 */

const NAME = /^[\w.-]+$/;

function jidArg(text: string): { username: string; domain: string; jid: string } {
  const parsed = parseBuddyJid(text);
  if (typeof parsed === "string") throw new CliError(parsed, 2);
  return { ...parsed, jid: `${parsed.username}@${parsed.domain}` };
}

interface AddOptions {
  kind: string;
  passwordFile?: string;
  passwordEnv?: string;
  room?: string[];
  nick?: string;
  options?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const buddies = program
    .command("buddies")
    .description("buddy bots: definitions added at runtime, their state, start/stop/restart, admin keys");

  buddies
    .command("list")
    .description("every buddy (config and table) with its state and the runner that owns it")
    .action(async () => {
      const pool = await ctx.pool();
      const defs = await loadDefinitions(pool, ctx.config());
      const { rows } = await pool.query<{
        jid: string;
        state: string;
        owner: string | null;
        stopped: boolean;
        last_error: string | null;
      }>(
        `SELECT username || '@' || domain AS jid, state, stopped, last_error,
           CASE WHEN expires_at > now() THEN owner END AS owner FROM buddy_leases`,
      );
      const leases = new Map(rows.map((r) => [r.jid, r]));
      for (const d of defs.values()) {
        const l = leases.get(d.jid);
        const state = l?.owner ? l.state : l?.stopped ? "stopped" : "unowned";
        const note = d.problem ?? l?.last_error ?? "";
        ctx.out(
          [d.jid, d.definition?.kind ?? "(invalid)", d.source, state, l?.owner ?? "-", note].join("\t"),
        );
      }
      if (defs.size === 0)
        ctx.out("no buddies defined (buddies.domains.<domain>.definitions, or `sidecars buddies add`)");
    });

  buddies
    .command("add <jid>")
    .description("add or replace a runtime buddy (its XMPP password: `sidecars users add <jid> --buddy`)")
    .requiredOption("--kind <kind>", "echo, service, notify, or a kind in buddies.kindsDir")
    .option("--password-file <path>", "a file holding its password (first line)")
    .option("--password-env <name>", "an environment variable of the buddies service holding its password")
    .option("--room <jid>", "a MUC room to join (repeat for more)", (v: string, all: string[] = []) => [
      ...all,
      v,
    ])
    .option("--nick <nick>", "its nickname in rooms (default: its username)")
    .option("--options <json>", "options of the kind, as JSON", "{}")
    .action(async (text: string, opts: AddOptions) => {
      const { username, domain, jid } = jidArg(text);
      if (!!opts.passwordFile === !!opts.passwordEnv) {
        throw new CliError("give exactly one of --password-file <path> or --password-env <name>", 2);
      }
      let options: unknown;
      try {
        options = JSON.parse(opts.options ?? "{}");
      } catch {
        throw new CliError(`--options is not JSON: ${opts.options}`, 2);
      }
      const parsed = buddyDefinition.safeParse({
        kind: opts.kind,
        password: opts.passwordFile ? { file: opts.passwordFile } : { env: opts.passwordEnv },
        options,
        rooms: opts.room ?? [],
        ...(opts.nick ? { nick: opts.nick } : {}),
      });
      if (!parsed.success) {
        throw new CliError(formatIssues(parsed.error.issues, { schema: buddyDefinition }).join("; "), 2);
      }
      const config = ctx.config();
      const problem = definitionProblem(config, domain, username);
      if (problem) throw new CliError(problem);
      const kinds = createKindRegistry({
        dir: fromRoot(config.buddies.kindsDir),
        log: createLogger({ log: { level: "silent", pretty: false } }, "cli"),
      });
      const kind = await kinds.get(parsed.data.kind).catch((err: Error) => {
        throw new CliError(err.message);
      });
      const checked = parseOptions(kind.options, parsed.data.options, "");
      if (!checked.ok) throw new CliError(`--options: ${checked.problems.join("; ")}`, 2);
      const created = await saveDefinition(await ctx.pool(), domain, username, parsed.data);
      ctx.out(
        `${created ? "added" : "updated"} ${jid} (${parsed.data.kind}); the runners pick it up at once`,
      );
    });

  buddies
    .command("remove <jid>")
    .description("remove a runtime buddy (one defined in config is removed from config)")
    .action(async (text: string) => {
      const { username, domain, jid } = jidArg(text);
      if (!(await deleteDefinition(await ctx.pool(), domain, username))) {
        throw new CliError(
          `${jid} is not a runtime buddy (buddies defined in config are removed from config/<env>.json)`,
        );
      }
      ctx.out(`removed ${jid}`);
    });

  for (const action of BUDDY_ACTIONS) {
    buddies
      .command(`${action} <jid>`)
      .description(
        action === "stop"
          ? "sign a buddy off and keep it off, across runners and restarts, until `start`"
          : action === "start"
            ? "let a stopped buddy run again"
            : "reconnect a buddy (its runner signs it off and logs it in again)",
      )
      .action(async (text: string) => {
        const { username, domain, jid } = jidArg(text);
        const pool = await ctx.pool();
        if (!(await loadDefinitions(pool, ctx.config())).has(jid))
          throw new CliError(`no buddy ${jid}: see \`sidecars buddies list\``);
        await requestAction(pool, domain, username, action as BuddyAction);
        ctx.out(`${action} requested for ${jid}`);
      });
  }

  buddies
    .command("admin-key <name>")
    .description("make a key for the admin API and page (or, with --hook, for HTTP hooks only); shown once")
    .option("--hook", "a key that may only call buddies' HTTP hooks (services.buddies.hookKeys)")
    .action((name: string, opts: { hook?: boolean }) => {
      if (!NAME.test(name)) throw new CliError(`"${name}" is not a key name: use letters, digits, . _ -`, 2);
      const key = `${opts.hook ? "bh_" : "ba_"}${randomBytes(32).toString("base64url")}`;
      const where = opts.hook ? "services.buddies.hookKeys" : "services.buddies.admins";
      ctx.out(
        `${opts.hook ? "Hook" : "Admin"} key "${name}" (shown this once; the service keeps only its SHA-256):`,
      );
      ctx.out(key);
      ctx.out("");
      ctx.out(`Add to ${where} in config/<env>.json, then reload the buddies service:`);
      ctx.out(JSON.stringify({ [name]: { sha256: keySha256(key) } }, null, 2));
      ctx.out("");
      ctx.out(
        opts.hook
          ? "Callers send `Authorization: Bearer <key>`."
          : `Log in to the page as "${name}" with the key as password.`,
      );
    });
}
