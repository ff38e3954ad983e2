import { z } from "zod";
import { StartupProblems } from "#common/errors.ts";
import { definitionProblem, type PluginDefinition } from "#common/plugins/definition.ts";
import { type ModuleFolder, ModuleLoadError } from "#common/plugins/folder.ts";
import { parseOptions, siteOf } from "#common/plugins/problems.ts";
import {
  type Authenticator,
  type AuthenticatorDeps,
  type AuthenticatorFactory,
  defineAuthenticator,
} from "./authenticator.ts";

/**
 * The `module` kind: a domain whose users are checked by code of its own, `<folder>/<domain>.ts` (the
 * legacy "domain auth file", services/auth/externals-auth/README.md). The module's default export is an
 * authenticator definition, whose schema checks the domain's options as a kind's would, or (the older shape)
 * a factory that gets them unchecked. The module is read at every start and SIGHUP; an edited one is
 * imported anew (plugins/folder.ts).
 */
export function moduleAuthenticator(folder: ModuleFolder) {
  return defineAuthenticator({
    kind: "module",
    summary: "code of the domain's own: services/auth/externals-auth/<domain>.ts",
    // the module's own schema checks them, below
    options: z.record(z.string(), z.unknown()),
    async create(options, deps): Promise<Authenticator> {
      const site = siteOf(`domains.${deps.domain}.authenticator`);
      const problem = (text: string) => new StartupProblems([`${site.key}: ${text}`]);
      let loaded: Awaited<ReturnType<ModuleFolder["load"]>>;
      try {
        loaded = await folder.load(deps.domain);
      } catch (err) {
        if (err instanceof ModuleLoadError) throw problem(`${err.message}: fix the module`);
        throw err;
      }
      if (!loaded) {
        throw problem(
          `kind "module" needs a module: create ${folder.fileFor(deps.domain)} (services/auth/externals-auth/README.md)`,
        );
      }
      const exported = loaded.module.default;
      if (typeof exported === "function") return (exported as AuthenticatorFactory)(options, deps);
      const why = definitionProblem(exported);
      if (why) {
        throw problem(
          `${loaded.file} is not an authenticator module: ${why.replace("definePlugin", "defineAuthenticator")}`,
        );
      }
      const definition = exported as PluginDefinition<z.ZodType, AuthenticatorDeps, Authenticator>;
      const parsed = parseOptions(definition.options, options, site.optionsKey);
      if (!parsed.ok) throw new StartupProblems(parsed.problems);
      return definition.create(parsed.options, deps);
    },
  });
}
