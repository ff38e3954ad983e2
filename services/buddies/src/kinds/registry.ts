import { KIND_NAME } from "#common/config/buddies-schema.ts";
import type { Logger } from "#common/logger.ts";
import { definitionProblem } from "#common/plugins/definition.ts";
import { createModuleFolder, ModuleLoadError } from "#common/plugins/folder.ts";
import { createRegistry } from "#common/plugins/registry.ts";
import echo from "./echo.ts";
import { type BuddyKind, type KindCleanup, type KindContext, kindPoint } from "./kind.ts";
import notify from "./notify.ts";
import service from "./service.ts";

/**
 * Buddy kinds by name (docs/architecture.md "Plugins"): the built-ins, then third-party kinds from a folder
 * (common/plugins/folder.ts), read on every `get` so that a kind added or edited there is used by the next
 * buddy that starts, without a restart. A built-in name always means the built-in: a file in the folder
 * cannot replace what operators rely on.
 */

export class UnknownKindError extends Error {
  override name = "UnknownKindError";
  readonly code = "unknown_kind";
}

export class InvalidKindError extends Error {
  override name = "InvalidKindError";
  readonly code = "invalid_kind";
}

export interface KindInfo {
  name: string;
  description: string;
  source: "built-in" | "folder";
}

export interface KindRegistry {
  get(name: string): Promise<BuddyKind>;
  list(): Promise<KindInfo[]>;
}

/** The built-in kinds: the one list of them. */
export const builtInKinds = createRegistry<KindContext, KindCleanup | Promise<KindCleanup>>(kindPoint, [
  echo,
  service,
  notify,
]);

/**
 * A folder module's default export as a kind, or why it is not one. Kinds written before `defineKind` took
 * `create(options, ctx)` (`{ description, options, create(ctx) }`, docs/buddies.md) are still read.
 */
function asKind(name: string, exported: unknown): BuddyKind | string {
  let d = exported as Record<string, unknown> | undefined;
  if (d && typeof d === "object" && d.summary === undefined && typeof d.description === "string") {
    const legacy = d as { create?: unknown };
    d = {
      ...d,
      kind: name,
      summary: d.description,
      create:
        typeof legacy.create === "function"
          ? (_options: unknown, ctx: unknown) => (legacy.create as (ctx: unknown) => unknown)(ctx)
          : undefined,
    };
  }
  const problem = definitionProblem(d);
  if (problem) return problem.replace("definePlugin", "defineKind");
  if (d?.kind !== undefined && d.kind !== name)
    return `it says it is kind "${String(d.kind)}": name its file ${d.kind}.js, or change its \`kind\``;
  return { ...(d as unknown as BuddyKind), kind: name };
}

export function createKindRegistry(deps: { dir?: string; log: Logger }): KindRegistry {
  const folder = deps.dir === undefined ? undefined : createModuleFolder({ dir: deps.dir, name: KIND_NAME });
  /** The kind made of each module, kept while the module is the same. */
  const kinds = new WeakMap<object, BuddyKind>();
  const builtIns = builtInKinds.kinds.join(", ");

  async function load(name: string): Promise<BuddyKind | undefined> {
    let loaded: Awaited<ReturnType<NonNullable<typeof folder>["load"]>>;
    try {
      loaded = await folder?.load(name);
    } catch (err) {
      if (!(err instanceof ModuleLoadError)) throw err;
      throw new InvalidKindError(`buddy kind "${name}" (${err.file}) failed to load: ${err.reason}`);
    }
    if (!loaded) return undefined;
    const known = kinds.get(loaded.module);
    if (known) return known;
    const kind = asKind(name, loaded.module.default);
    if (typeof kind === "string")
      throw new InvalidKindError(`buddy kind "${name}" (${loaded.file}) is not a kind: ${kind}`);
    kinds.set(loaded.module, kind);
    deps.log.info({ kind: name, file: loaded.file }, "buddy kind loaded");
    return kind;
  }

  return {
    async get(name) {
      const builtIn = builtInKinds.get(name);
      if (builtIn) return builtIn;
      if (!KIND_NAME.test(name)) {
        throw new UnknownKindError(
          `buddy kind ${JSON.stringify(name)} is unknown: a kind name is a lowercase word ([a-z][a-z0-9_-]*); use one of ${builtIns}`,
        );
      }
      const kind = await load(name);
      if (kind) return kind;
      throw new UnknownKindError(
        builtInKinds.unknownKind(
          name,
          undefined,
          folder
            ? `put a third-party kind in ${folder.fileFor(name)}`
            : "set buddies.kindsDir for third-party kinds",
        ),
      );
    },

    async list() {
      const list: KindInfo[] = builtInKinds.kinds.map((name) => ({
        name,
        description: builtInKinds.get(name)?.summary ?? "",
        source: "built-in",
      }));
      for (const name of (await folder?.names()) ?? []) {
        if (builtInKinds.get(name)) continue;
        try {
          const kind = await load(name);
          if (kind) list.push({ name, description: kind.summary, source: "folder" });
        } catch (err) {
          // one broken file must not hide the others; `get` reports it to whoever uses it
          deps.log.warn({ kind: name, err: (err as Error).message }, "buddy kind skipped");
        }
      }
      return list;
    },
  };
}
