import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { SingleBar } from "cli-progress";
import { type Command, Option } from "commander";
import { clearLoginFailures } from "#auth";
import type { DomainConfig } from "#common/config/schema.ts";
import { ATTACHMENT_POLICIES, type AttachmentPolicy } from "#common/config/users-schema.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";
import { buddyProblem, jidText, setDisabled, userSummary } from "#common/users/lifecycle.ts";
import { exportUserJson, hasUserData, writeUserZip } from "#common/users/lifecycle-export.ts";
import {
  RemovalBusyError,
  RemovalIncompleteError,
  type RemovalSummary,
  removeUserData,
} from "#common/users/lifecycle-removal.ts";
import {
  addUser,
  countLegacyRows,
  dropNeedlessCleartext,
  legacyRows,
  listUsers,
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
    .description(
      "remove the account and everything of the user in every table and in storage (resumable: run it again to finish one that stopped)",
    )
    .addOption(
      new Option(
        "--attachments <policy>",
        "the pictures and videos they sent: delete them, or anonymise them (kept, owned by no one); default users.removal.attachments",
      ).choices(ATTACHMENT_POLICIES),
    )
    .option("--keep-attachments", "the same as --attachments anonymise")
    .option("--yes", "do not ask (it asks only on a terminal)")
    .action(
      async (
        text: string,
        opts: { attachments?: AttachmentPolicy; keepAttachments?: boolean; yes?: boolean },
      ) => {
        const { jid } = jidOf(text, ctx);
        if (opts.keepAttachments && opts.attachments === "delete") {
          throw new CliError("--keep-attachments and --attachments delete say opposite things: give one", 2);
        }
        const config = ctx.config();
        const pool = await ctx.pool();
        const problem = await buddyProblem(pool, config, jid);
        if (problem) throw new CliError(problem);
        const policy = opts.keepAttachments
          ? "anonymise"
          : (opts.attachments ?? config.users.removal.attachments);
        if (!opts.yes && process.stdin.isTTY) await confirmRemoval(jid, policy);
        const storage = await createStorage(config.media.storage);
        try {
          const result = await removeUserData(pool, storage, jid, {
            attachments: policy,
            forgetLoginFailures: clearLoginFailures,
          }).catch((err: Error) => {
            if (err instanceof RemovalIncompleteError || err instanceof RemovalBusyError) {
              throw new CliError(err.message);
            }
            throw err;
          });
          if (result.status === "not_found") throw new CliError(`no user ${jidText(jid)}`);
          ctx.out(removedLine(jid, result.summary, result.resumed));
          if (result.summary.legacyFilesLeft.length > 0) {
            ctx.out(
              `left ${result.summary.legacyFilesLeft.length} imported legacy file(s) under media.legacyRoot, which the services only read: ${result.summary.legacyFilesLeft.join(", ")}`,
            );
          }
        } finally {
          await storage.close();
        }
      },
    );

  /** On a terminal: what is about to go, and the JID typed back. */
  async function confirmRemoval(jid: Jid, policy: AttachmentPolicy): Promise<void> {
    const s = await userSummary(await ctx.pool(), jid);
    const counts = Object.entries(s.rows)
      .filter(([, n]) => n > 0)
      .map(([t, n]) => `${t} ${n}`)
      .join(", ");
    const unfinished = s.removal?.state === "files";
    if (!counts && !unfinished) return; // nothing to confirm: the removal says there is no such user
    process.stderr.write(
      unfinished && !counts
        ? `${jidText(jid)}: a removal begun ${s.removal?.startedAt.toISOString()} has ${s.removal?.pendingFiles} file(s) left.\nType the JID to finish it: `
        : `${jidText(jid)}: ${counts}; attachments: ${policy}.\nType the JID to remove all of it: `,
    );
    const rl = createInterface({ input: process.stdin, terminal: false });
    const line = await new Promise<string>((resolve) => {
      rl.once("line", resolve);
      rl.once("close", () => resolve(""));
    });
    rl.close();
    if (line.trim().toLowerCase() !== jidText(jid)) throw new CliError("not confirmed: nothing removed");
  }

  users
    .command("export <jid>")
    .description(
      "write all the user's data (account without password material, tokens, subscriptions, mutes, locations, attachments, avatar) as JSON, or a zip",
    )
    .option(
      "--out <file>",
      "write to this file (.json, or .zip) instead of standard output; made readable by its owner only",
    )
    .option(
      "--with-files",
      "a zip with the stored files of their attachments and avatar too (needs --out <file>.zip)",
    )
    .action(async (text: string, opts: { out?: string; withFiles?: boolean }) => {
      const { jid } = jidOf(text, ctx);
      const zip = opts.out?.toLowerCase().endsWith(".zip") ?? false;
      if (opts.withFiles && !zip) {
        throw new CliError("--with-files writes a zip: give --out <file>.zip", 2);
      }
      const config = ctx.config();
      const pool = await ctx.pool();
      if (!(await hasUserData(pool, jid))) throw new CliError(`no user ${jidText(jid)}`);
      const started = performance.now();
      if (!opts.out) {
        await pipeline(exportUserJson(pool, jid), process.stdout);
        return;
      }
      // written beside it and renamed when whole: a stopped export leaves no half file under the name asked for
      const partial = `${opts.out}.partial-${process.pid}`;
      const file = createWriteStream(partial, { mode: 0o600 });
      let files = "";
      try {
        if (zip && opts.withFiles) {
          const storage = await createStorage(config.media.storage);
          try {
            const r = await writeUserZip(pool, storage, jid, file, { legacyRoot: config.media.legacyRoot });
            files = `, ${r.files} file(s) of ${(r.bytes / 1048576).toFixed(1)} MiB${r.missing ? `; ${r.missing} missing from storage, listed with "file": null` : ""}`;
          } finally {
            await storage.close();
          }
        } else if (zip) {
          await writeUserZip(pool, undefined, jid, file);
        } else {
          await pipeline(exportUserJson(pool, jid), file);
        }
        await rename(partial, opts.out);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
      const size = (await stat(opts.out)).size;
      ctx.out(
        `exported ${jidText(jid)} to ${opts.out} (${size} bytes${files}) in ${((performance.now() - started) / 1000).toFixed(2)} s`,
      );
    });

  for (const [name, disabled] of [
    ["disable", true],
    ["enable", false],
  ] as const) {
    users
      .command(`${name} <jid>`)
      .description(
        disabled
          ? "refuse every login of the account at once, in every process (MongooseIM, ejabberd, the app API); its data stays"
          : "let a disabled account log in again",
      )
      .action(async (text: string) => {
        const { jid, domain } = jidOf(text, ctx);
        const result = await setDisabled(await ctx.pool(), jid, disabled);
        if (result === "unknown_user") {
          const listed = domain.buddies.map((b) => b.toLowerCase()).includes(jid.node);
          throw new CliError(
            !listed && domain.authenticator.kind !== "web_users"
              ? `${jid.domain} checks passwords with its ${domain.authenticator.kind} backend, so web_users has no ${jidText(jid)}: ${name} the account there`
              : `no user ${jidText(jid)}`,
          );
        }
        if (result === "unchanged") ctx.out(`${jidText(jid)} was ${name}d already`);
        else if (disabled) {
          ctx.out(
            `disabled ${jidText(jid)}: every new login is refused now; XMPP sessions already open stay until they end`,
          );
        } else ctx.out(`enabled ${jidText(jid)}`);
      });
  }

  users
    .command("show <jid>")
    .description("what is stored of the user: the account (never its password) and rows per table")
    .action(async (text: string) => {
      const { jid } = jidOf(text, ctx);
      const s = await userSummary(await ctx.pool(), jid);
      const p = s.profile;
      ctx.out(
        p
          ? `${s.jid}\tcreated ${p.createdAt.toISOString()}\t${p.disabledAt ? `disabled ${p.disabledAt.toISOString()}` : "enabled"}\t${p.credentials.join("+") || "no password"}`
          : `${s.jid}\tno account`,
      );
      for (const [table, n] of Object.entries(s.rows)) if (n > 0) ctx.out(`${table}\t${n}`);
      if (s.attachmentBytes > 0) ctx.out(`attachment bytes\t${s.attachmentBytes}`);
      if (s.removal) {
        ctx.out(
          `removal\t${s.removal.state}, started ${s.removal.startedAt.toISOString()}${s.removal.finishedAt ? `, finished ${s.removal.finishedAt.toISOString()}` : `, ${s.removal.pendingFiles} file(s) left: run \`sidecars users remove ${s.jid}\` again`}`,
        );
      }
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

/** `removed <jid>`, then what went when more than the account did. */
function removedLine(jid: Jid, s: RemovalSummary, resumed: boolean): string {
  const parts = Object.entries(s.rows)
    .filter(([table, n]) => n > 0 && table !== "web_users")
    .map(([table, n]) => `${table} ${n}`);
  if (s.files > 0) parts.push(`${s.files} stored file(s) deleted`);
  const head = resumed ? `finished removing ${jidText(jid)}` : `removed ${jidText(jid)}`;
  return parts.length > 0 ? `${head}: ${parts.join(", ")}` : head;
}
