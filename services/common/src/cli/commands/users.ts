import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { type Command, Option } from "commander";
import { type Jid, parseJid } from "../../users/jid.ts";
import { addUser, listUsers, removeUser, setPassword } from "../../users/web-users.ts";
import { type CliContext, CliError } from "../context.ts";

interface PasswordOptions {
  passwordStdin?: boolean;
  generate?: boolean;
}

/** Passwords come from stdin, a prompt or --generate; never from a flag, which `ps` and shell history would keep. */
async function readPassword(opts: PasswordOptions, ctx: CliContext): Promise<string> {
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

function jidOf(text: string, ctx: CliContext): Jid {
  let jid: Jid;
  try {
    jid = parseJid(text);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  ctx.domain(jid.domain);
  return jid;
}

const passwordStdin = () => new Option("--password-stdin", "read the password from standard input");
const generate = () => new Option("--generate", "generate a random password and print it once");

export function registerUsers(program: Command, ctx: CliContext): void {
  const users = program
    .command("users")
    .description("XMPP accounts in web_users (buddies, test users, operators)");
  users
    .command("add <jid>")
    .description("create user@domain with a password (salted SCRAM; cleartext only if the domain keeps it)")
    .addOption(passwordStdin())
    .addOption(generate())
    .action(async (text: string, opts: PasswordOptions) => {
      const jid = jidOf(text, ctx);
      const password = await readPassword(opts, ctx);
      const pool = await ctx.pool();
      if (!(await addUser(pool, jid, { cleartext: password }, ctx.domain(jid.domain)))) {
        throw new CliError(
          `${jid.node}@${jid.domain} exists already; use \`sidecars users passwd\` to change its password`,
        );
      }
      ctx.out(`added ${jid.node}@${jid.domain}`);
    });
  users
    .command("passwd <jid>")
    .description("set a new password")
    .addOption(passwordStdin())
    .addOption(generate())
    .action(async (text: string, opts: PasswordOptions) => {
      const jid = jidOf(text, ctx);
      const password = await readPassword(opts, ctx);
      if (!(await setPassword(await ctx.pool(), jid, { cleartext: password }, ctx.domain(jid.domain)))) {
        throw new CliError(`no user ${jid.node}@${jid.domain}; create it with \`sidecars users add\``);
      }
      ctx.out(`password changed for ${jid.node}@${jid.domain}`);
    });
  users
    .command("remove <jid>")
    .description("delete the account")
    .action(async (text: string) => {
      const jid = jidOf(text, ctx);
      if (!(await removeUser(await ctx.pool(), jid))) throw new CliError(`no user ${jid.node}@${jid.domain}`);
      ctx.out(`removed ${jid.node}@${jid.domain}`);
    });
  users
    .command("list")
    .description("list accounts (never their passwords)")
    .option("--domain <domain>", "only this domain")
    .option("--limit <n>", "at most n rows", "100")
    .action(async (opts: { domain?: string; limit: string }) => {
      if (opts.domain) ctx.domain(opts.domain);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new CliError(`--limit: "${opts.limit}" is not a positive whole number`, 2);
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
}
