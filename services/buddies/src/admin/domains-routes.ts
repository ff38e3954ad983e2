import express, { Router } from "express";
import { z } from "zod";
import { checkAuthenticators } from "#auth";
import {
  type DomainsView,
  deleteRuntimeDomain,
  parseDomainEntry,
  type RuntimeDomainRow,
  type RuntimeDomains,
  saveRuntimeDomain,
} from "#common/config/runtime-domains.ts";
import type { Pool } from "#common/db/pool.ts";
import { StartupProblems } from "#common/errors.ts";
import { validated } from "#common/http/validate.ts";
import type { Logger } from "#common/logger.ts";
import { errors } from "../errors.ts";

/**
 * Domains at runtime for an operator console (docs/operations.md "Adding a domain"): the same rows, checks
 * and effect as `sidecars domains add|set|remove|list` (services/common/src/config/runtime-domains.ts). Behind
 * the admin keys and the same-origin check of admin-auth.ts, mounted with the admin API. A change reaches
 * every process of every machine through PostgreSQL (NOTIFY domains_changed), this one included.
 */

export interface DomainsRouterDeps {
  pool: Pool;
  log: Logger;
  domains: RuntimeDomains;
}

const nameParams = z.object({ name: z.string().min(1).max(253) });

// `entry`: the row as stored, without the defaults `config` shows (what the console edits and PUTs back)
const rowFields = (row: RuntimeDomainRow | undefined) =>
  row ? { entry: row.config, updatedAt: row.updatedAt.toISOString(), updatedBy: row.updatedBy } : {};

function listing(view: DomainsView) {
  return {
    domains: view.domains.map((d) => ({
      name: d.name,
      source: d.source,
      // a row the config files win over: served once they no longer define the domain
      hidesDatabaseRow: d.source === "config" && d.row !== undefined,
      config: d.config,
      ...rowFields(d.row),
    })),
    invalid: view.invalid.map((i) => ({ name: i.row.name, problems: i.problems, ...rowFields(i.row) })),
    problems: view.problems,
  };
}

export function domainsRouter(deps: DomainsRouterDeps): Router {
  const { pool, log, domains } = deps;
  const router = Router();
  router.use("/api/domains", express.json({ limit: "64kb" }));

  router.get("/api/domains", async (_req, res) => {
    res.json(listing(await domains.view()));
  });

  router.put(
    "/api/domains/:name",
    validated({ params: nameParams }, async ({ params }, req, res) => {
      const body: unknown = req.body;
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw errors.invalidRequest(
          "body",
          "a domain's entry, as under `domains` in config/<env>.json (JSON)",
        );
      }
      const checked = await domains.check(params.name, body);
      if (!checked.ok) throw errors.invalidDomain(checked.problems);
      const parsed = parseDomainEntry(params.name, body);
      if (!parsed.ok) throw errors.invalidDomain(parsed.problems);
      try {
        await checkAuthenticators({ domains: { [params.name]: parsed.domain } }, { pool, log });
      } catch (err) {
        if (!(err instanceof StartupProblems)) throw err;
        throw errors.invalidDomain(err.problems);
      }
      const admin = String(res.locals.admin ?? "admin");
      const created = await saveRuntimeDomain(pool, params.name, body, `${admin} (buddies admin API)`);
      const hidden = (await domains.view()).hidden.some((r) => r.name === params.name);
      log.info({ domain: params.name, admin, created }, "domain saved in the database");
      res.status(created ? 201 : 200).json({
        domain: { name: params.name, source: hidden ? "config" : "database", config: parsed.domain },
        ...(hidden
          ? {
              warning: `${params.name} is also in the config files, which win: this row is served only once they no longer define it`,
            }
          : {}),
      });
    }),
  );

  router.delete(
    "/api/domains/:name",
    validated({ params: nameParams }, async ({ params }, _req, res) => {
      const view = await domains.view();
      const entry = view.domains.find((d) => d.name === params.name);
      const row = entry?.row ?? view.invalid.find((i) => i.row.name === params.name)?.row;
      if (!row) {
        if (entry) throw errors.domainInConfig(params.name);
        throw errors.notFound(`domain ${params.name}`);
      }
      const checked = await domains.check(params.name, undefined);
      if (!checked.ok) throw errors.domainInUse(checked.problems);
      if (!(await deleteRuntimeDomain(pool, params.name))) throw errors.notFound(`domain ${params.name}`);
      log.info({ domain: params.name, admin: res.locals.admin }, "domain removed from the database");
      res.status(204).end();
    }),
  );

  return router;
}
