import type { Command } from "commander";
import type { Config } from "#common/config/schema.ts";
import {
  clearOverride,
  isVersion,
  listOverrides,
  overridesOf,
  resolveMinimum,
  setOverride,
} from "../../../http-utility/src/app-version/versions.ts";
import { type CliContext, CliError } from "../context.ts";

const PLATFORM = /^[a-z0-9_-]{1,40}$/;

function configuredApp(config: Config, app: string): Config["apps"][string] {
  const found = Object.hasOwn(config.apps, app) ? config.apps[app] : undefined;
  if (!found) {
    const known = Object.keys(config.apps).join(", ") || "none";
    throw new CliError(
      `unknown app "${app}" (configured: ${known}); add it under "apps" in config/<env>.json (names are case-sensitive)`,
    );
  }
  return found;
}

function checkPlatform(platform: string): void {
  if (!PLATFORM.test(platform)) {
    throw new CliError(`platform "${platform}": use lower-case letters, digits, _ or -, such as android`, 2);
  }
}

/** What applies to `platform` now, as "1.0.0" or "1.0.0 (default)" or "none". */
function inEffect(config: Config, overrides: Map<string, string>, app: string, platform: string): string {
  const m = resolveMinimum(config.apps, overrides, app, platform);
  if (!m.ok) return "none";
  return m.platform === platform ? m.minimumVersion : `${m.minimumVersion} (${m.platform})`;
}

export function register(program: Command, ctx: CliContext): void {
  const apps = program
    .command("apps")
    .description("the minimum version each app must run (config `apps`, overridden at runtime)");

  apps
    .command("list")
    .description("every app and platform: the config's minimum, the override, and which applies")
    .action(async () => {
      const config = ctx.config();
      const overrides = await listOverrides(await ctx.pool());
      const names = Object.keys(config.apps).sort();
      for (const app of names) {
        const configured = configuredApp(config, app).minimumVersion;
        const own = new Map(overrides.filter((o) => o.appName === app).map((o) => [o.platform, o]));
        const platforms = [...new Set([...Object.keys(configured), ...own.keys()])].sort();
        if (platforms.length === 0) ctx.out(`${app}\t(no platform configured)`);
        for (const platform of platforms) {
          const fromConfig = configured[platform];
          const override = own.get(platform);
          ctx.out(
            override
              ? `${app}\t${platform}\t${override.minimumVersion}\toverride (set ${override.updatedAt.toISOString()}; config: ${fromConfig ?? "none"})`
              : `${app}\t${platform}\t${fromConfig}\tconfig`,
          );
        }
      }
      for (const o of overrides.filter((o) => !names.includes(o.appName))) {
        ctx.out(
          `${o.appName}\t${o.platform}\t${o.minimumVersion}\tignored (not in config; clear it with \`sidecars apps clear-minimum\`)`,
        );
      }
      if (names.length === 0 && overrides.length === 0) {
        ctx.out('no apps configured; add them under "apps" in config/<env>.json');
      }
    });

  apps
    .command("set-minimum <app> <platform> <version>")
    .description("override the minimum version of an app on a platform (`default`: any other platform)")
    .action(async (app: string, platform: string, version: string) => {
      const config = ctx.config();
      configuredApp(config, app);
      checkPlatform(platform);
      if (!isVersion(version)) {
        throw new CliError(
          `"${version}" is not a version: write dotted numbers (1.10.2), a pre-release (2.0.0-beta) or a build number (100)`,
          2,
        );
      }
      const pool = await ctx.pool();
      const before = inEffect(config, await overridesOf(pool, app), app, platform);
      await setOverride(pool, app, platform, version);
      ctx.out(`${app} ${platform}: ${before} → ${version}`);
    });

  apps
    .command("clear-minimum <app> <platform>")
    .description("remove an override: the config's minimum applies again")
    .action(async (app: string, platform: string) => {
      const config = ctx.config();
      checkPlatform(platform);
      const pool = await ctx.pool();
      const cleared = await clearOverride(pool, app, platform);
      if (cleared === undefined) {
        throw new CliError(`${app} ${platform} has no override to clear`);
      }
      const now = Object.hasOwn(config.apps, app)
        ? inEffect(config, await overridesOf(pool, app), app, platform)
        : "none";
      ctx.out(`${app} ${platform}: ${cleared} → ${now}`);
    });
}
