import express, { type Request, type Response, Router } from "express";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { validated } from "#common/http/validate.ts";
import { parseOptions } from "#common/plugins/problems.ts";
import { errors } from "../errors.ts";
import type { KindRegistry } from "../kinds/registry.ts";
import { requestAction } from "../runner/actions.ts";
import {
  definitionProblem,
  deleteDefinition,
  loadDefinitions,
  parseBuddyJid,
  saveDefinition,
} from "../runner/definitions.ts";
import type { Runner } from "../runner/runner.ts";
import { type BuddyView, clusterView, ownerUrl } from "./buddy-view.ts";
import { actionParams, definitionBody, hookParams, jidParams } from "./schema.ts";

/**
 * The admin API (docs/buddies.md "Admin API"), served by every runner and answering for the whole cluster:
 * state comes from `buddy_leases`, actions are written there and reach the owning runner through
 * PostgreSQL (NOTIFY, or its next tick), so it does not matter which runner an operator talks to. Only a
 * buddy's recent log and its HTTP hooks live in the owning process; other runners forward those requests.
 */

export interface AdminDeps {
  config: Config;
  pool: Pool;
  runner: Runner;
  kinds: KindRegistry;
}

const FORWARDED = "x-buddies-forwarded";

function buddyJid(text: string): { username: string; domain: string; jid: string } {
  const parsed = parseBuddyJid(text);
  if (typeof parsed === "string") throw errors.invalidJid(parsed);
  return { ...parsed, jid: `${parsed.username}@${parsed.domain}` };
}

/** Sends the request on to the runner that owns the buddy, once (never from runner to runner again). */
async function forward(req: Request, res: Response, url: string | null): Promise<void> {
  if (!url || req.headers[FORWARDED]) {
    throw errors.ownerWithoutAddress();
  }
  const headers: Record<string, string> = { [FORWARDED]: "1" };
  for (const h of ["authorization", "content-type"]) {
    const v = req.headers[h];
    if (typeof v === "string") headers[h] = v;
  }
  const init: RequestInit = { method: req.method, headers, signal: AbortSignal.timeout(5000) };
  if (req.method !== "GET" && req.body !== undefined) init.body = JSON.stringify(req.body);
  const answer = await fetch(`${url}${req.originalUrl}`, init).catch(() => {
    throw errors.ownerNotAnswering();
  });
  res.status(answer.status).type(answer.headers.get("content-type") ?? "application/json");
  res.send(Buffer.from(await answer.arrayBuffer()));
}

export function adminRouter(deps: AdminDeps): Router {
  const { pool, runner, config } = deps;
  const router = Router();
  router.use(express.json({ limit: "256kb" }));

  const view = async () =>
    clusterView(pool, runner, await loadDefinitions(pool, config), config.buddies.cluster.leaseSeconds);
  const one = async (jid: string): Promise<BuddyView> => {
    const b = (await view()).buddies.find((x) => x.jid === jid);
    if (!b) throw errors.notFound(`buddy ${jid}`);
    return b;
  };
  const notifyRunners = async () => {
    await pool.query("NOTIFY buddies_changed");
    runner.poke();
  };

  router.get("/api/buddies", async (_req, res) => {
    res.json(await view());
  });

  router.get("/api/kinds", async (_req, res) => {
    res.json({ kinds: await deps.kinds.list() });
  });

  router.get(
    "/api/buddies/:jid",
    validated({ params: jidParams }, async ({ params }, _req, res) => {
      res.json({ buddy: await one(buddyJid(params.jid).jid) });
    }),
  );

  router.post(
    "/api/buddies/:jid/:action",
    validated({ params: actionParams }, async ({ params }, _req, res) => {
      const { username, domain, jid } = buddyJid(params.jid);
      await one(jid);
      await requestAction(pool, domain, username, params.action);
      runner.poke();
      res.status(202).json({ buddy: await one(jid) });
    }),
  );

  router.put(
    "/api/buddies/:jid",
    validated({ params: jidParams, body: definitionBody }, async ({ params, body }, _req, res) => {
      const { username, domain, jid } = buddyJid(params.jid);
      const problem = definitionProblem(config, domain, username);
      if (problem) throw errors.domainNotServed(problem);
      const kind = await deps.kinds.get(body.kind).catch((err: Error) => {
        throw errors.unknownKind(err.message);
      });
      const options = parseOptions(kind.options, body.options, "options");
      if (!options.ok) throw errors.invalidOptions(options.problems);
      const created = await saveDefinition(pool, domain, username, body);
      await notifyRunners();
      res.status(created ? 201 : 200).json({ buddy: await one(jid) });
    }),
  );

  router.delete(
    "/api/buddies/:jid",
    validated({ params: jidParams }, async ({ params }, _req, res) => {
      const { username, domain, jid } = buddyJid(params.jid);
      if (!(await deleteDefinition(pool, domain, username))) {
        const known = (await loadDefinitions(pool, config)).get(jid);
        if (known) {
          throw errors.definedInConfig(jid, domain);
        }
        throw errors.notFound(`buddy ${jid}`);
      }
      await notifyRunners();
      res.status(204).end();
    }),
  );

  router.get(
    "/api/buddies/:jid/logs",
    validated({ params: jidParams }, async ({ params }, req, res) => {
      const { jid } = buddyJid(params.jid);
      const lines = runner.logLines(jid);
      const elsewhere = await ownerUrl(pool, runner, jid);
      if (elsewhere !== undefined && !req.headers[FORWARDED]) return forward(req, res, elsewhere);
      if (!lines && !runner.definitions.has(jid)) await one(jid);
      res.json({ lines: lines ?? [] });
    }),
  );

  /** Server-sent events: the whole view at once, then again whenever it changes (checked every second). */
  router.get("/api/events", async (req, res) => {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    let last = "";
    let closed = false;
    const push = async () => {
      try {
        const text = JSON.stringify(await view());
        if (text !== last && !closed) {
          last = text;
          res.write(`event: buddies\ndata: ${text}\n\n`);
        } else if (!closed) res.write(": keep-alive\n\n");
      } catch {
        if (!closed) res.write(`event: unavailable\ndata: {}\n\n`);
      }
    };
    await push();
    const timer = setInterval(push, 1000);
    req.on("close", () => {
      closed = true;
      clearInterval(timer);
    });
  });

  return router;
}

/** `POST /hooks/<domain>/<username>/<hook>`: a kind's HTTP hook, run where the buddy is connected. */
export function hooksRouter(deps: Pick<AdminDeps, "pool" | "runner">): Router {
  const router = Router();
  router.use(express.json({ limit: "64kb" }));
  router.post(
    "/hooks/:domain/:username/:hook",
    validated({ params: hookParams }, async ({ params }, req, res) => {
      const jid = `${params.username}@${params.domain}`.toLowerCase();
      const session = deps.runner.session(jid);
      if (!session) {
        const elsewhere = await ownerUrl(deps.pool, deps.runner, jid);
        if (elsewhere !== undefined && !req.headers[FORWARDED]) return forward(req, res, elsewhere);
        throw errors.buddyNotRunning(jid);
      }
      const handler = session.bot?.hooks.get(params.hook);
      if (!session.bot) {
        throw errors.buddyNotOnline(jid, session.state);
      }
      if (!handler) throw errors.notFound(`hook ${params.hook} of ${jid}`);
      const answer = await handler({ body: req.body ?? {}, query: req.query as Record<string, string> });
      res.status(answer.status ?? 200).json(answer.body ?? { ok: true });
    }),
  );
  return router;
}
