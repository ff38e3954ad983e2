import type { z } from "zod";
import { StartupProblems } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { PluginDefinition } from "./definition.ts";
import { type PluginSite, parseOptions, problemsOf, siteOf } from "./problems.ts";

/**
 * One registry per plugin point: the point's definitions by kind, and the one way config becomes an
 * instance. `create(at, { kind, options }, ctx)` checks the kind, parses the options with the definition's
 * schema and calls `create`; every problem on the way is a StartupProblems naming the config key and the fix
 * (problems.ts). The config schema keeps `kind` a string: the list of kinds lives here, in the registry of
 * the service that has the implementations, and services/common imports no service.
 */

/** An optional ability of a point's instances: how to tell it, and what an instance without it cannot do. */
export interface Capability<I> {
  /** A few words: "local file path". */
  summary: string;
  /** What is lost without it, logged at start: "videos get no poster". */
  lost: string;
  has(instance: I): boolean;
}

export interface PluginPoint<I = unknown, C extends string = never> {
  /** What one plugin of the point is called in messages: "storage backend", "SMS sender". */
  name: string;
  /** Where the kinds and their options are documented (a file of the repository). */
  docs: string;
  /** The optional abilities of this point; a definition lists those its instances have. */
  capabilities?: { readonly [K in C]: Capability<I> };
}

/** What config holds where a plugin is chosen. */
export interface PluginEntry {
  kind: string;
  options?: unknown;
}

type Resolved<D> = { ok: true; definition: D; options: unknown } | { ok: false; problems: string[] };

export interface Registry<Ctx, R, C extends string = never> {
  readonly point: PluginPoint<Awaited<R>, C>;
  /** The kinds, in the order they were given. */
  readonly kinds: readonly string[];
  get(kind: string): PluginDefinition<z.ZodType, Ctx, R, C> | undefined;
  /** The fix of an unknown kind: `kind "ldapp" is unknown: use one of web_users, http, module`. */
  unknownKind(kind: string, at?: string, orElse?: string): string;
  /** The definition and the parsed options of the plugin at `at`, or its problems; creates nothing. */
  resolve(at: string | PluginSite, entry: PluginEntry): Resolved<PluginDefinition<z.ZodType, Ctx, R, C>>;
  /**
   * The instance of the plugin at `at`, as synchronous as its definition's `create`. Throws StartupProblems
   * (never anything else) naming the config key and the fix. With `log`, a point that has capabilities
   * logs which the instance has and what is lost without the others.
   */
  create(at: string | PluginSite, entry: PluginEntry, ctx: Ctx, log?: Logger): R;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof (v as { then?: unknown } | null)?.then === "function";

export function createRegistry<Ctx, R, C extends string = never>(
  point: PluginPoint<Awaited<R>, C>,
  definitions: readonly PluginDefinition<z.ZodType, Ctx, R, C>[],
): Registry<Ctx, R, C> {
  const byKind = new Map<string, PluginDefinition<z.ZodType, Ctx, R, C>>();
  const capabilities = (point.capabilities ?? {}) as Record<string, Capability<Awaited<R>>>;
  for (const d of definitions) {
    // a programming error, not an operator's: thrown as it is, at import
    if (byKind.has(d.kind)) throw new Error(`${point.name} kind "${d.kind}" is defined twice`);
    for (const c of d.capabilities ?? []) {
      if (!capabilities[c]) throw new Error(`${point.name} "${d.kind}": unknown capability "${c}"`);
    }
    byKind.set(d.kind, d);
  }
  const kinds = [...byKind.keys()];

  const unknownKind = (kind: string, at?: string, orElse?: string) =>
    `${at ? `${at}: kind` : point.name} ${JSON.stringify(kind)} is unknown: use one of ${kinds.join(", ")}${orElse ? `, or ${orElse}` : ""} (${point.docs})`;

  const resolve: Registry<Ctx, R, C>["resolve"] = (at, entry) => {
    const site = siteOf(at);
    const definition = byKind.get(entry.kind);
    if (!definition) return { ok: false, problems: [unknownKind(entry.kind, site.key)] };
    const parsed = parseOptions(definition.options, entry.options, site.optionsKey);
    return parsed.ok ? { ok: true, definition, options: parsed.options } : parsed;
  };

  /** Declared and present must agree: a consumer tests the instance, the start log reads the declaration. */
  function checked(
    instance: Awaited<R>,
    d: PluginDefinition<z.ZodType, Ctx, R, C>,
    site: PluginSite,
    log?: Logger,
  ) {
    const declared = new Set<string>(d.capabilities ?? []);
    const problems: string[] = [];
    const lost: Record<string, string> = {};
    for (const [name, c] of Object.entries(capabilities)) {
      const has = c.has(instance);
      if (declared.has(name) && !has) {
        problems.push(
          `${site.key}: ${point.name} "${d.kind}" declares the capability ${name} (${c.summary}) but its instance has none: fix the plugin or drop "${name}" from its capabilities`,
        );
      } else if (!declared.has(name) && has) {
        problems.push(
          `${site.key}: ${point.name} "${d.kind}" has the capability ${name} (${c.summary}) without declaring it: add "${name}" to its capabilities`,
        );
      } else if (!has) lost[name] = `without ${c.summary}: ${c.lost}`;
    }
    if (problems.length > 0) throw new StartupProblems(problems);
    if (log && Object.keys(capabilities).length > 0) {
      // what is lost is news at every start; a plugin that has everything is a debug line
      const without = Object.values(lost);
      const fields = {
        key: site.key,
        kind: d.kind,
        capabilities: [...declared],
        ...(without.length > 0 && { lost }),
      };
      const line = `${site.key}: ${point.name} "${d.kind}"${without.length > 0 ? `; ${without.join("; ")}` : ""}`;
      if (without.length > 0) log.info(fields, line);
      else log.debug(fields, line);
    }
    return instance;
  }

  return {
    point,
    kinds,
    get: (kind) => byKind.get(kind),
    unknownKind,
    resolve,
    create(at, entry, ctx, log) {
      const site = siteOf(at);
      const found = resolve(site, entry);
      if (!found.ok) throw new StartupProblems(found.problems);
      const { definition } = found;
      const fail = (err: unknown): never => {
        throw new StartupProblems(
          problemsOf(err, site, {
            what: `${point.name} "${definition.kind}" could not start`,
            docs: point.docs,
          }),
        );
      };
      let made: R;
      try {
        made = definition.create(found.options, ctx);
      } catch (err) {
        return fail(err);
      }
      if (isThenable(made)) {
        return Promise.resolve(made).then(
          (instance) => checked(instance as Awaited<R>, definition, site, log),
          fail,
        ) as R;
      }
      return checked(made as Awaited<R>, definition, site, log) as R;
    },
  };
}
