import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

/**
 * Plugins read from a folder (third-party buddy kinds in buddies.kindsDir, per-domain authenticators in
 * services/auth/externals-auth): `<dir>/<name>.js|.mjs|.ts`, else `<dir>/<name>/index.js|.mjs|.ts` (a cloned
 * repository). A module is imported anew when its file's content changed since the last import, so an edit
 * takes effect at the next use (a buddy that starts, a SIGHUP) without a restart; an unchanged file is the
 * module already loaded.
 */

export interface LoadedModule {
  file: string;
  /** The module's namespace: its `default` is the plugin. */
  module: { default?: unknown };
  /** True when this call imported it (first use, or the file changed). */
  fresh: boolean;
}

export class ModuleLoadError extends Error {
  override name = "ModuleLoadError";
  readonly file: string;
  /** What the import threw: a syntax error, a missing dependency, an exception at the module's top. */
  readonly reason: string;
  constructor(file: string, cause: unknown) {
    const reason = (cause as Error)?.message ?? String(cause);
    super(`${file} failed to load: ${reason}`);
    this.file = file;
    this.reason = reason;
  }
}

export interface ModuleFolder {
  readonly dir: string;
  /** Where a module named `name` would go first: for "create it here" fixes. */
  fileFor(name: string): string;
  /** The module named `name`, or undefined when the folder has none; throws ModuleLoadError. */
  load(name: string): Promise<LoadedModule | undefined>;
  /** The names of the modules the folder holds (files and folders with an index), sorted. */
  names(): Promise<string[]>;
}

const EXTENSIONS = [".js", ".mjs", ".ts"];

export function createModuleFolder(o: {
  dir: string;
  /** Names that may be looked up; anything else is never turned into a path. */
  name: RegExp;
  /** The extension `fileFor` suggests: ".js" for plain modules, ".ts" where the examples are TypeScript. */
  suggest?: string;
}): ModuleFolder {
  const dir = path.resolve(o.dir);
  /** The last import of each name, kept while its file's content is the same. */
  const loaded = new Map<string, { file: string; version: string; module: { default?: unknown } }>();

  async function find(name: string): Promise<string | undefined> {
    const candidates = [
      ...EXTENSIONS.map((ext) => path.join(dir, `${name}${ext}`)),
      ...EXTENSIONS.map((ext) => path.join(dir, name, `index${ext}`)),
    ];
    for (const file of candidates) {
      const s = await stat(file).catch(() => undefined);
      if (s?.isFile()) return file;
    }
    return undefined;
  }

  return {
    dir,
    fileFor: (name) => path.join(dir, `${name}${o.suggest ?? ".js"}`),

    async load(name) {
      if (!o.name.test(name)) return undefined;
      const file = await find(name);
      if (!file) return undefined;
      // the content, not the mtime: two edits within the file system's timestamp granularity differ too
      const version = createHash("sha256")
        .update(await readFile(file))
        .digest("hex")
        .slice(0, 16);
      const cached = loaded.get(name);
      if (cached && cached.file === file && cached.version === version)
        return { file, module: cached.module, fresh: false };
      // a new query is a new module for the ESM loader; the old version stays in the loader's cache (a little
      // memory per edit, which a restart gives back)
      let module: { default?: unknown };
      try {
        module = (await import(`${pathToFileURL(file).href}?v=${version}`)) as { default?: unknown };
      } catch (err) {
        throw new ModuleLoadError(file, err);
      }
      loaded.set(name, { file, version, module });
      return { file, module, fresh: true };
    },

    async names() {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return [];
        throw err;
      });
      const names = new Set<string>();
      for (const e of entries) {
        const name = e.isDirectory() ? e.name : e.name.replace(/\.(js|mjs|ts)$/, "");
        if ((e.isDirectory() || name !== e.name) && o.name.test(name)) names.add(name);
      }
      const present = await Promise.all([...names].map(async (n) => ((await find(n)) ? n : undefined)));
      return present.filter((n): n is string => n !== undefined).sort();
    },
  };
}
