import { Router } from "express";
import { z } from "zod";
import { clearLoginFailures } from "#auth";
import type { Config } from "#common/config/schema.ts";
import { ATTACHMENT_POLICIES } from "#common/config/users-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { validated } from "#common/http/validate.ts";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";
import { buddyProblem, jidText, searchUsers, setDisabled, userSummary } from "#common/users/lifecycle.ts";
import { exportUserJson, hasUserData } from "#common/users/lifecycle-export.ts";
import { RemovalBusyError, RemovalIncompleteError, removeUserData } from "#common/users/lifecycle-removal.ts";
import { errors } from "../errors.ts";

/**
 * The users of the operator console (docs/operations.md "Removing, exporting, disabling a user"): search, look
 * at, disable, enable, unlock, export and remove an account, as `sidecars users` does, behind the admin keys
 * of the rest of the admin API (admin-auth.ts: mounted after `requireAdmin` and `sameOrigin` in app.ts).
 */

export interface UsersDeps {
  config: Config;
  pool: Pool;
  /** The media storage a removal deletes files from; made from `media.storage` on first use when not given. */
  storage?: () => Promise<Storage>;
}

const jidParams = z.object({ jid: z.string().min(3).max(1100) });
const searchQuery = z.object({
  search: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const removeQuery = z.object({ attachments: z.enum(ATTACHMENT_POLICIES).optional() });

export function usersRouter(deps: UsersDeps): Router {
  const { pool } = deps;
  const router = Router();
  let storage: Promise<Storage> | undefined;
  const storageOf = () => {
    storage ??= (deps.storage ?? (() => createStorage(deps.config.media.storage)))().catch((err) => {
      storage = undefined;
      throw err;
    });
    return storage;
  };

  /** A user of a configured domain, as the path names it (URL-decoded by the router). */
  const userOf = (text: string): Jid => {
    let jid: Jid;
    try {
      jid = parseJid(text);
    } catch (err) {
      throw errors.invalidUserJid((err as Error).message);
    }
    if (!Object.hasOwn(deps.config.domains, jid.domain)) throw errors.unknownUserDomain(jid.domain);
    return jid;
  };

  router.get(
    "/api/users",
    validated({ query: searchQuery }, async ({ query }, _req, res) => {
      res.json({ users: await searchUsers(pool, { search: query.search, limit: query.limit }) });
    }),
  );

  router.get(
    "/api/users/:jid",
    validated({ params: jidParams }, async ({ params }, _req, res) => {
      const jid = userOf(params.jid);
      const summary = await userSummary(pool, jid);
      if (!summary.profile && !summary.removal && Object.values(summary.rows).every((n) => n === 0)) {
        throw errors.notFound(`user ${jidText(jid)}`);
      }
      res.json({ user: summary });
    }),
  );

  for (const [action, disabled] of [
    ["disable", true],
    ["enable", false],
  ] as const) {
    router.post(
      `/api/users/:jid/${action}`,
      validated({ params: jidParams }, async ({ params }, _req, res) => {
        const jid = userOf(params.jid);
        const result = await setDisabled(pool, jid, disabled);
        if (result === "unknown_user") throw errors.notFound(`user ${jidText(jid)}`);
        res.json({ result, user: await userSummary(pool, jid) });
      }),
    );
  }

  router.post(
    "/api/users/:jid/unlock",
    validated({ params: jidParams }, async ({ params }, _req, res) => {
      const jid = userOf(params.jid);
      res.json({ forgotten: await clearLoginFailures(pool, jid) });
    }),
  );

  router.get(
    "/api/users/:jid/export",
    validated({ params: jidParams }, async ({ params }, _req, res) => {
      const jid = userOf(params.jid);
      if (!(await hasUserData(pool, jid))) throw errors.notFound(`user ${jidText(jid)}`);
      res.status(200).set({
        "content-type": "application/json; charset=utf-8",
        "content-disposition": `attachment; filename="${encodeURIComponent(jidText(jid))}.json"`,
        "cache-control": "no-store",
      });
      const stream = exportUserJson(pool, jid);
      // a failure half-way cannot become an error answer any more: the connection is cut, the JSON left unended
      stream.on("error", (err) => res.destroy(err));
      res.on("close", () => stream.destroy());
      stream.pipe(res);
    }),
  );

  router.delete(
    "/api/users/:jid",
    validated({ params: jidParams, query: removeQuery }, async ({ params, query }, _req, res) => {
      const jid = userOf(params.jid);
      const problem = await buddyProblem(pool, deps.config, jid);
      if (problem) throw errors.userIsBuddy(problem);
      const result = await removeUserData(pool, await storageOf(), jid, {
        attachments: query.attachments ?? deps.config.users.removal.attachments,
        forgetLoginFailures: clearLoginFailures,
      }).catch((err: Error) => {
        if (err instanceof RemovalBusyError) throw errors.removalRunning(err.message);
        if (err instanceof RemovalIncompleteError) throw errors.removalIncomplete(err.message);
        throw err;
      });
      if (result.status === "not_found") throw errors.notFound(`user ${jidText(jid)}`);
      res.json({ removed: jidText(jid), ...result });
    }),
  );

  return router;
}
