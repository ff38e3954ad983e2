import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { KIND_NAME } from "#common/config/buddies-schema.ts";
import type { Logger } from "#common/logger.ts";
import echo from "./echo.ts";
import type { BuddyKind } from "./kind.ts";
import notify from "./notify.ts";
import service from "./service.ts";

/**
 * Buddy kinds by name (conventions.md 6): the built-ins, then third-party kinds from a folder, read on every
 * `get` so that a kind added or edited there is used by the next buddy that starts, without a restart.
 * A built-in name always means the built-in: a file in the folder cannot replace what operators rely on.
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

const BUILT_IN: ReadonlyMap<string, BuddyKind> = new Map<string, BuddyKind>([
  ["echo", echo],
  ["service", service],
  ["notify", notify],
]);
const EXTENSIONS = [".js", ".mjs", ".ts"];

/** `<dir>/<name>.js|.mjs|.ts`, then `<dir>/<name>/index.js|.mjs|.ts`: the first that exists. */
async function findFile(dir: string, name: string): Promise<{ file: string; mtimeMs: number } | undefined> {
  const candidates = [
    ...EXTENSIONS.map((ext) => path.join(dir, `${name}${ext}`)),
    ...EXTENSIONS.map((ext) => path.join(dir, name, `index${ext}`)),
  ];
  for (const file of candidates) {
    const s = await stat(file).catch(() => undefined);
    if (s?.isFile()) return { file, mtimeMs: s.mtimeMs };
  }
  return undefined;
}

/** The default export checked for the BuddyKind shape, or why it is not one. */
function checkKind(mod: { default?: unknown }): string | undefined {
  const k = mod.default as Partial<Record<keyof BuddyKind, unknown>> | undefined;
  if (typeof k !== "object" || k === null)
    return "it has no default export: `export default { description, options, create }`";
  if (typeof k.description !== "string" || k.description.trim() === "")
    return "`description` must be a string";
  const options = k.options as { parse?: unknown } | undefined;
  if (typeof options?.parse !== "function")
    return "`options` must be a schema with a `parse` function, e.g. z.object({})";
  if (typeof k.create !== "function") return "`create(ctx)` must be a function";
  return undefined;
}

export function createKindRegistry(deps: { dir?: string; log: Logger }): KindRegistry {
  const dir = deps.dir === undefined ? undefined : path.resolve(deps.dir);
  /** The last import of each folder kind, kept while its file's mtime is unchanged. */
  const loaded = new Map<string, { file: string; mtimeMs: number; kind: BuddyKind }>();

  const whereToPut = (name: string) =>
    dir
      ? `a third-party kind goes in ${path.join(dir, `${name}.js`)}`
      : "set buddies.kindsDir for third-party kinds";

  async function load(name: string, found: { file: string; mtimeMs: number }): Promise<BuddyKind> {
    const cached = loaded.get(name);
    if (cached && cached.file === found.file && cached.mtimeMs === found.mtimeMs) return cached.kind;
    // a new query is a new module for the ESM loader, so an edited file is imported anew; the old
    // version stays in the loader's cache (a little memory per edit, which a restart gives back)
    const url = `${pathToFileURL(found.file).href}?v=${found.mtimeMs}`;
    let mod: { default?: unknown };
    try {
      mod = (await import(url)) as { default?: unknown };
    } catch (err) {
      throw new InvalidKindError(
        `buddy kind "${name}" (${found.file}) failed to load: ${(err as Error).message}`,
      );
    }
    const problem = checkKind(mod);
    if (problem) throw new InvalidKindError(`buddy kind "${name}" (${found.file}) is not a kind: ${problem}`);
    const kind = mod.default as BuddyKind;
    loaded.set(name, { ...found, kind });
    deps.log.info({ kind: name, file: found.file }, "buddy kind loaded");
    return kind;
  }

  return {
    async get(name) {
      const builtIn = BUILT_IN.get(name);
      if (builtIn) return builtIn;
      const builtIns = [...BUILT_IN.keys()].join(", ");
      if (!KIND_NAME.test(name)) {
        throw new UnknownKindError(
          `unknown buddy kind ${JSON.stringify(name)}: a kind name is a lowercase word ([a-z][a-z0-9_-]*); built-in kinds are ${builtIns}`,
        );
      }
      const found = dir ? await findFile(dir, name) : undefined;
      if (!found) {
        throw new UnknownKindError(
          `unknown buddy kind "${name}": built-in kinds are ${builtIns}; ${whereToPut(name)}`,
        );
      }
      return load(name, found);
    },

    async list() {
      const kinds: KindInfo[] = [...BUILT_IN].map(([name, k]) => ({
        name,
        description: k.description,
        source: "built-in",
      }));
      if (!dir) return kinds;
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return [];
        throw err;
      });
      const names = new Set<string>();
      for (const e of entries) {
        const name = e.isDirectory() ? e.name : e.name.replace(/\.(js|mjs|ts)$/, "");
        if ((e.isDirectory() || name !== e.name) && KIND_NAME.test(name) && !BUILT_IN.has(name))
          names.add(name);
      }
      for (const name of [...names].sort()) {
        const found = await findFile(dir, name);
        if (!found) continue;
        try {
          kinds.push({ name, description: (await load(name, found)).description, source: "folder" });
        } catch (err) {
          // one broken file must not hide the others; `get` reports it to whoever uses it
          deps.log.warn({ kind: name, err: (err as Error).message }, "buddy kind skipped");
        }
      }
      return kinds;
    },
  };
}
