import { compareVersions as compareSemver, validate } from "compare-versions";
import { type Config, VERSION } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";

/**
 * App versions and the minimum each app must run, per platform: the config's `apps.<app>.minimumVersion`,
 * overridden at runtime by rows of app_minimum_versions (`sidecars apps set-minimum`). Registration uses
 * `isBelow` and `minimumVersion` too.
 */

/**
 * compare-versions orders dotted numbers of up to four parts (`1.0` = `1` = `1.0.0`, `1.9` < `1.10.2`,
 * `99` < `100`) and pre-releases as semver does (`2.0.0-alpha` < `2.0.0-beta` < `2.0.0`). It accepts a
 * pre-release only after three numbers, where our VERSION also allows `1.0-beta`: the missing parts are
 * zeros, so they are written out first.
 */
function normalised(version: string): string {
  const dash = version.indexOf("-");
  if (dash < 0) return version;
  const numbers = version.slice(0, dash).split(".");
  while (numbers.length < 3) numbers.push("0");
  return `${numbers.join(".")}${version.slice(dash)}`;
}

/** A version this module can compare: VERSION's shape, with well-formed pre-release parts (`beta.2`, not `a..b`). */
export function isVersion(text: string): boolean {
  return VERSION.test(text) && validate(normalised(text));
}

/** -1, 0 or 1 as `a` is below, equal to or above `b`; throws on a string that is not a version. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  for (const v of [a, b]) {
    if (!isVersion(v)) {
      throw new Error(`"${v}" is not a version: write dotted numbers (1.10.2), 2.0.0-beta or a build number`);
    }
  }
  return compareSemver(normalised(a), normalised(b));
}

export function isBelow(version: string, minimum: string): boolean {
  return compareVersions(version, minimum) < 0;
}

// ---------------------------------------------------------------------------------------------------------
// Lookup: config first, then the overrides of the database.

type Apps = Config["apps"];

export type Minimum =
  | { ok: true; appName: string; platform: string; minimumVersion: string; source: "config" | "override" }
  | { ok: false; reason: "unknown_app" }
  | { ok: false; reason: "unknown_platform"; known: string[] };

/**
 * The minimum of `appName` on `platform` (`default` when none is given or the platform has no entry of its
 * own). Only configured apps are known; an override may add a platform the config does not name.
 */
export function resolveMinimum(
  apps: Apps,
  overrides: ReadonlyMap<string, string>,
  appName: string,
  platform: string | undefined,
): Minimum {
  const app = Object.hasOwn(apps, appName) ? apps[appName] : undefined;
  if (!app) return { ok: false, reason: "unknown_app" };
  const entries = new Map<string, { version: string; source: "config" | "override" }>();
  for (const [p, version] of Object.entries(app.minimumVersion))
    entries.set(p, { version, source: "config" });
  for (const [p, version] of overrides) entries.set(p, { version, source: "override" });
  for (const p of platform === undefined ? ["default"] : [platform, "default"]) {
    const found = entries.get(p);
    if (found) {
      return { ok: true, appName, platform: p, minimumVersion: found.version, source: found.source };
    }
  }
  return { ok: false, reason: "unknown_platform", known: [...entries.keys()].sort() };
}

/**
 * The app a request without `appName` means (installed legacy apps call `minimum_app_version` without it):
 * the one marked `default`, else the only app configured; undefined when neither tells.
 */
export function defaultApp(apps: Apps): string | undefined {
  const names = Object.keys(apps);
  return names.find((name) => apps[name]?.default) ?? (names.length === 1 ? names[0] : undefined);
}

export async function minimumVersion(
  pool: Pool,
  apps: Apps,
  appName: string,
  platform: string | undefined,
): Promise<Minimum> {
  if (!Object.hasOwn(apps, appName)) return { ok: false, reason: "unknown_app" };
  return resolveMinimum(apps, await overridesOf(pool, appName), appName, platform);
}

// Read at every lookup (one primary-key range read): a change made by `sidecars apps set-minimum` holds in
// every process at once, with no cache to expire.
export async function overridesOf(pool: Pool, appName: string): Promise<Map<string, string>> {
  const r = await pool.query<{ platform: string; minimum_version: string }>({
    name: "app_minimum_versions.of",
    text: "SELECT platform, minimum_version FROM app_minimum_versions WHERE app_name = $1",
    values: [appName],
  });
  return new Map(r.rows.map((row) => [row.platform, row.minimum_version]));
}

export interface Override {
  appName: string;
  platform: string;
  minimumVersion: string;
  updatedAt: Date;
}

export async function listOverrides(pool: Pool): Promise<Override[]> {
  const r = await pool.query<Override>(
    `SELECT app_name AS "appName", platform, minimum_version AS "minimumVersion", updated_at AS "updatedAt"
     FROM app_minimum_versions ORDER BY app_name, platform`,
  );
  return r.rows;
}

export async function setOverride(
  pool: Pool,
  appName: string,
  platform: string,
  version: string,
): Promise<void> {
  await pool.query(
    `INSERT INTO app_minimum_versions (app_name, platform, minimum_version) VALUES ($1, $2, $3)
     ON CONFLICT (app_name, platform) DO UPDATE SET minimum_version = EXCLUDED.minimum_version, updated_at = now()`,
    [appName, platform, version],
  );
}

/** Removes the override; answers the version it held, undefined when there was none. */
export async function clearOverride(
  pool: Pool,
  appName: string,
  platform: string,
): Promise<string | undefined> {
  const r = await pool.query<{ minimum_version: string }>(
    "DELETE FROM app_minimum_versions WHERE app_name = $1 AND platform = $2 RETURNING minimum_version",
    [appName, platform],
  );
  return r.rows[0]?.minimum_version;
}
