import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { SingleBar } from "cli-progress";
import { type Command, Option } from "commander";
import { clearLoginFailures } from "#auth";
import type { DomainConfig } from "#common/config/schema.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";
import {
  addUser,
  countLegacyRows,
  dropNeedlessCleartext,
  legacyRows,
  listUsers,
  removeUser,
  setPassword,
  upgradeLegacyRow,
} from "#common/users/web-users.ts";
import { type CliContext, CliError } from "../context.ts";

/** The legacy procedure (`insert into web_users (node, token, domain) values …`), validated and hashed. */

interface PasswordOptions {
  password?: string;
  passwordStdin?: boolean;
  generate?: boolean;
}

const passwordOptions = (cmd: Command) =>
  cmd
    .addOption(
      new Option(
        "--password <password>",
        "the password (visible to `ps` and shell history: prefer --password-stdin)",
      ),
    )
    .addOption(new Option("--password-stdin", "read the password from standard input"))
    .addOption(new Option("--generate", "generate a random password and print it once"));

/** A password from --password, stdin, a prompt or --generate: exactly one way. */
async function readPassword(opts: PasswordOptions, ctx: CliContext): Promise<string> {
  const given = [opts.password !== undefined, !!opts.passwordStdin, !!opts.generate].filter(Boolean).length;
  if (given > 1)
    throw new CliError("give the password one way: --password, --password-stdin or --generate", 2);
  if (opts.password !== undefined) {
    if (opts.password.length === 0) throw new CliError("empty password: give one, or use --generate", 2);
    return opts.password;
  }
  if (opts.generate) {
    const pw = randomBytes(18).toString("base64url");
    ctx.out(`password: ${pw}`);
    return pw;
  }
  if (!opts.passwordStdin && !process.stdin.isTTY) {
    throw new CliError("no password: pass --password-stdin (and pipe it in) or --generate");
  }
  const rl = createInterface({
    input: process.stdin,
    output: opts.passwordStdin ? undefined : process.stderr,
    terminal: !opts.passwordStdin,
  });
  if (!opts.passwordStdin) process.stderr.write("password: ");
  const line = await new Promise<string>((resolve) => {
    rl.once("line", resolve);
    rl.once("close", () => resolve(""));
  });
  rl.close();
  if (line.length === 0) throw new CliError("empty password: give one, or use --generate");
  return line;
}

function jidOf(text: string, ctx: CliContext): { jid: Jid; domain: DomainConfig } {
  let jid: Jid;
  try {
    jid = parseJid(text);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  return { jid, domain: ctx.domain(jid.domain) };
}

/** web_users holds a domain's users only when the domain authenticates with it; otherwise only its buddies. */
function checkHome(jid: Jid, domain: DomainConfig, buddy: boolean): void {
  const listed = domain.buddies.map((b) => b.toLowerCase()).includes(jid.node);
  if (buddy && !listed) {
    throw new CliError(
      `${jid.node} is not a buddy of ${jid.domain}: add "${jid.node}" to domains.${jid.domain}.buddies in config/<env>.json, reload, then run this again`,
    );
  }
  if (!buddy && !listed && domain.authenticator.kind !== "web_users") {
    throw new CliError(
      `${jid.domain} checks passwords with its ${domain.authenticator.kind} backend, so web_users keeps only its buddies: use --buddy for a buddy`,
    );
  }
}

export function register(program: Command, ctx: CliContext): void {
  const users = program
    .command("users")
    .description("XMPP accounts in web_users (users of web_users domains, buddies of every domain)");

  passwordOptions(
    users
      .command("add <jid>")
      .description("create node@domain (salted SCRAM; cleartext only if the domain keeps it)")
      .option("--buddy", "a buddy of the domain (listed in its config): always checked against web_users"),
  ).action(async (text: string, opts: PasswordOptions & { buddy?: boolean }) => {
    const { jid, domain } = jidOf(text, ctx);
    checkHome(jid, domain, !!opts.buddy);
    const password = await readPassword(opts, ctx);
    if (!(await addUser(await ctx.pool(), jid, { cleartext: password }, domain))) {
      throw new CliError(
        `${jid.node}@${jid.domain} exists already; use \`sidecars users set-password\` to change its password`,
      );
    }
    ctx.out(`added ${jid.node}@${jid.domain}${opts.buddy ? " (buddy)" : ""}`);
  });

  passwordOptions(
    users.command("set-password <jid>").alias("passwd").description("set a new password"),
  ).action(async (text: string, opts: PasswordOptions) => {
    const { jid, domain } = jidOf(text, ctx);
    const password = await readPassword(opts, ctx);
    if (!(await setPassword(await ctx.pool(), jid, { cleartext: password }, domain))) {
      throw new CliError(`no user ${jid.node}@${jid.domain}; create it with \`sidecars users add\``);
    }
    ctx.out(`password changed for ${jid.node}@${jid.domain}`);
  });

  users
    .command("remove <jid>")
    .description("delete the account")
    .action(async (text: string) => {
      const { jid } = jidOf(text, ctx);
      if (!(await removeUser(await ctx.pool(), jid))) throw new CliError(`no user ${jid.node}@${jid.domain}`);
      ctx.out(`removed ${jid.node}@${jid.domain}`);
    });

  users
    .command("unlock <jid>")
    .description(
      "forget the failed logins counted for the user, on every path and address, for every process at once",
    )
    .action(async (text: string) => {
      const { jid } = jidOf(text, ctx);
      const cleared = await clearLoginFailures(await ctx.pool(), jid);
      ctx.out(
        cleared > 0
          ? `unlocked ${jid.node}@${jid.domain}: ${cleared} failure counter(s) forgotten`
          : `${jid.node}@${jid.domain} had no failed logins counted`,
      );
    });

  users
    .command("list")
    .description("list accounts (never their passwords)")
    .option("--domain <domain>", "only this domain")
    .option("--limit <n>", "at most n rows", "100")
    .action(async (opts: { domain?: string; limit: string }) => {
      if (opts.domain) ctx.domain(opts.domain);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        throw new CliError(`--limit: "${opts.limit}" is not a positive whole number`, 2);
      }
      const rows = await listUsers(await ctx.pool(), {
        ...(opts.domain ? { domain: opts.domain } : {}),
        limit,
      });
      for (const u of rows) {
        const creds =
          [u.hasScram ? "scram" : "", u.hasCleartext ? "cleartext" : ""].filter(Boolean).join("+") || "none";
        ctx.out(`${u.node}@${u.domain}\t${creds}${u.disabled ? "\tdisabled" : ""}`);
      }
      if (rows.length === 0) ctx.out("no users");
    });

  users
    .command("rehash")
    .description(
      "give legacy cleartext rows salted SCRAM data and drop cleartext a domain does not keep (resumable, idempotent)",
    )
    .option("--domain <domain>", "only this domain")
    .option("--batch <n>", "rows per batch", "200")
    .action(async (opts: { domain?: string; batch: string }) => {
      if (opts.domain) ctx.domain(opts.domain);
      const batch = Number(opts.batch);
      if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) {
        throw new CliError(`--batch: "${opts.batch}" is not a whole number from 1 to 10000`, 2);
      }
      const pool = await ctx.pool();
      const domains = ctx.config().domains;
      const total = await countLegacyRows(pool, opts.domain);
      const bar = new SingleBar({
        format: "rehash [{bar}] {value}/{total} rows {eta_formatted} left",
        stream: process.stderr,
        noTTYOutput: false,
        hideCursor: true,
      });
      bar.start(total, 0);
      let done = 0;
      let rehashed = 0;
      const unconfigured = new Set<string>();
      // keyset paging over rows still without SCRAM data: an interrupted run resumes where it stopped
      let after: Jid | undefined;
      for (;;) {
        const rows = await legacyRows(pool, {
          ...(opts.domain ? { domain: opts.domain } : {}),
          ...(after ? { after } : {}),
          limit: batch,
        });
        if (rows.length === 0) break;
        await Promise.all(
          rows.map(async (row) => {
            const domain = domains[row.domain];
            if (!domain) unconfigured.add(row.domain);
            else if (await upgradeLegacyRow(pool, row, row.token, domain)) rehashed++;
            bar.update(++done);
          }),
        );
        after = rows[rows.length - 1];
      }
      bar.stop();
      const dropped = await dropNeedlessCleartext(
        pool,
        Object.entries(domains)
          .filter(([name, d]) => !d.keepCleartext && (!opts.domain || name === opts.domain))
          .map(([name]) => name),
      );
      ctx.out(
        `rehashed ${rehashed} row(s), dropped needless cleartext from ${dropped}` +
          (unconfigured.size > 0
            ? `; left ${[...unconfigured].join(", ")} as they are (not configured domains: add them, then run again)`
            : ""),
      );
    });
}
