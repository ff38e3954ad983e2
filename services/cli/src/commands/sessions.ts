import type { Command } from "commander";
import { durationMs } from "#common/durations.ts";
import {
  isUuid,
  listSessions,
  revokeAllSessions,
  revokeSession,
  rotateSigningKey,
} from "#common/users/app-sessions.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";
import { jidText } from "#common/users/lifecycle.ts";
import { type CliContext, CliError } from "../context.ts";

/**
 * `sidecars sessions`: the app sessions of a user (docs/api.md "Sessions"), and the key that signs access
 * tokens (docs/security.md "App sessions and bearer tokens"). What is stored is #common/users/app-sessions.ts's.
 */

function jidOf(text: string): Jid {
  try {
    return parseJid(text);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

export function register(program: Command, ctx: CliContext): void {
  const sessions = program
    .command("sessions")
    .description("app sessions (bearer access tokens, refresh tokens) and the key that signs them");

  sessions
    .command("list <jid>")
    .description("the user's live app sessions: id, login, last refresh, end, address, app (never a token)")
    .action(async (text: string) => {
      const jid = jidOf(text);
      const list = await listSessions(await ctx.pool(), jid);
      if (list.length === 0) ctx.out(`${jidText(jid)} has no live app session`);
      for (const s of list) {
        const app = [s.app.name, s.app.version, s.app.platform].filter((v) => v !== null).join(" ") || "-";
        ctx.out(
          `${s.id}\tcreated ${s.createdAt.toISOString()}\tlast used ${s.lastUsedAt.toISOString()}\texpires ${s.expiresAt.toISOString()}\t${s.clientAddress ?? "-"}\t${app}`,
        );
      }
    });

  sessions
    .command("revoke <jid>")
    .description(
      "end every live app session of the user (or one, with --session): refresh tokens stop at once, access tokens within a moment in every process",
    )
    .option("--session <id>", "only this session (an id of `sidecars sessions list`)")
    .action(async (text: string, opts: { session?: string }) => {
      const jid = jidOf(text);
      const pool = await ctx.pool();
      if (opts.session !== undefined) {
        if (!isUuid(opts.session)) {
          throw new CliError(
            `--session: "${opts.session}" is not a session id (see \`sidecars sessions list\`)`,
            2,
          );
        }
        if (!(await revokeSession(pool, jid, opts.session, "operator"))) {
          throw new CliError(`${jidText(jid)} has no live session ${opts.session}`);
        }
        ctx.out(`revoked session ${opts.session} of ${jidText(jid)}`);
        return;
      }
      const ids = await revokeAllSessions(pool, jid, "operator");
      ctx.out(
        ids.length > 0
          ? `revoked ${ids.length} session(s) of ${jidText(jid)}: its apps must log in again`
          : `${jidText(jid)} had no live app session`,
      );
    });

  sessions
    .command("rotate-key")
    .description(
      "a new key signs access tokens from now on, in every process; the old ones verify until their tokens have expired (services.httpUtility.sessions.accessTtl), then are deleted",
    )
    .action(async () => {
      const accessTtl = ctx.config().services.httpUtility.sessions.accessTtl;
      const ttlMs = durationMs(accessTtl) as number;
      const { id, deleted } = await rotateSigningKey(await ctx.pool(), ttlMs);
      ctx.out(
        `new signing key ${id}: it signs from now on; the previous key keeps verifying for ${accessTtl} (the access tokens' life)${
          deleted > 0 ? `; ${deleted} key(s) superseded longer ago deleted` : ""
        }`,
      );
      ctx.out("http-utility deletes the previous key (its hourly sweep) once that time has passed");
    });
}
