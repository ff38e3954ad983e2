import { readFileSync } from "node:fs";
import path from "node:path";
import type { z } from "zod";
import { StartupProblems } from "../errors.ts";
import { projectRoot } from "../paths.ts";
import { formatIssues } from "../zod-issues.ts";
import { ENV_OVERRIDES } from "./env-overrides.ts";
import { type Config, configFieldsSchema, configSchema } from "./schema.ts";
import { Secrets } from "./secrets.ts";

export const APP_ENVS = ["development", "test", "demo", "production"] as const;

/** Every problem found in the configuration, listed at once. */
export class ConfigError extends StartupProblems {
  override name = "ConfigError";
  constructor(problems: string[]) {
    super(problems, "config");
  }
}

type Json = { [key: string]: unknown };

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Objects merge key by key; arrays and scalars of the later source replace the earlier. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function readJson(file: string, problems: string[], required: boolean): Json {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !required) return {};
    problems.push(`${file}: cannot be read (${(err as Error).message}); restore it from git`);
    return {};
  }
  try {
    const value: unknown = JSON.parse(text);
    if (!isObject(value)) throw new Error("the top level must be an object");
    return value;
  } catch (err) {
    problems.push(`${file}: not valid JSON (${(err as Error).message}); fix the file or restore it from git`);
    return {};
  }
}

function setPath(target: Json, keys: readonly string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[keys[keys.length - 1] as string] = value;
}

function applyEnv(raw: Json, env: NodeJS.ProcessEnv, problems: string[]): void {
  for (const o of ENV_OVERRIDES) {
    const direct = env[o.name];
    const file = o.secret ? env[`${o.name}_FILE`] : undefined;
    if (direct !== undefined && file !== undefined) {
      problems.push(`${o.name} and ${o.name}_FILE are both set: keep one`);
      continue;
    }
    let value = direct;
    if (file !== undefined) {
      try {
        value = readFileSync(file, "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        problems.push(
          `${o.name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code}); fix the path`,
        );
        continue;
      }
    }
    if (value === undefined || value === "") continue;
    if (o.type === "port") {
      const n = Number(value);
      if (!/^\d+$/.test(value) || n > 65535) {
        problems.push(`${o.name}: "${value}" is not a port number (0-65535)`);
        continue;
      }
      setPath(raw, o.path, n);
    } else {
      setPath(raw, o.path, value);
    }
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  configDir?: string;
  /** Extra values merged last, for tests and the CLI. */
  overrides?: Json;
  /**
   * The domains kept in the database (runtime-domains.ts), as stored: they join the files' own, a file's
   * domain winning over a row of the same name, and are checked with them, so the files may name either
   * (apiKeys.<k>.domain, apps.<a>.legacy.domains, buddies.domains). `"unread"`: not read yet (where the
   * database is comes from this very config), so those names are not checked.
   */
  databaseDomains?: Record<string, unknown> | "unread";
}

/** default.json, then <APP_ENV>.json, then the environment; validated; throws a ConfigError listing all problems. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const dir = options.configDir ?? env.CONFIG_DIR ?? path.join(projectRoot, "config");
  const problems: string[] = [];
  const appEnv = env.APP_ENV ?? "development";
  if (!(APP_ENVS as readonly string[]).includes(appEnv)) {
    throw new ConfigError([`APP_ENV: "${appEnv}" is not one of ${APP_ENVS.join(", ")}`]);
  }
  let raw = readJson(path.join(dir, "default.json"), problems, true);
  raw = deepMerge(raw, readJson(path.join(dir, `${appEnv}.json`), problems, false));
  raw.env = appEnv;
  applyEnv(raw, env, problems);
  if (options.overrides) raw = deepMerge(raw, options.overrides);
  if (isObject(options.databaseDomains) && isObject(raw.domains)) {
    const files = raw.domains;
    const rows = Object.entries(options.databaseDomains).filter(([name]) => !Object.hasOwn(files, name));
    raw.domains = { ...files, ...Object.fromEntries(rows) };
  }
  const auth = (raw.services as Json | undefined)?.auth as Json | undefined;
  // development generates one (scripts/start.ts) and tests set their own: anywhere else, without it any local
  // process could ask the auth service for passwords and register accounts
  if (appEnv !== "development" && appEnv !== "test" && !auth?.basicAuth) {
    problems.push(
      `services.auth.basicAuth: required in ${appEnv}: set AUTH_BASIC_AUTH or AUTH_BASIC_AUTH_FILE to MongooseIM's basic_auth`,
    );
  }
  const database = raw.database as Json | undefined;
  if (appEnv === "production" && !database?.url) {
    problems.push(
      "database.url: required in production: set DATABASE_URL or DATABASE_URL_FILE (the embedded database is for development and demo)",
    );
  }
  const schema = options.databaseDomains === "unread" ? configFieldsSchema : configSchema;
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    problems.push(
      ...formatIssues(parsed.error.issues, {
        schema: configSchema,
        missing: "add it to config/default.json or config/<env>.json",
      }),
    );
  }
  if (parsed.success && appEnv === "production") {
    // an empty list allows every country: SMS to premium ranges abroad bill the operator (toll fraud)
    for (const [name, d] of Object.entries(parsed.data.domains)) {
      if (d.registration.enabled && d.registration.countries.length === 0) {
        problems.push(
          `domains.${name}.registration.countries: required in production when registration is enabled: list the countries whose numbers may register, e.g. ["GR"] (docs/registration.md)`,
        );
      }
    }
  }
  const secrets = new Secrets(env);
  if (parsed.success) problems.push(...missingSecrets(parsed.data, secrets));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return { ...parsed.data, secrets };
}

/**
 * The secrets the config names for the services' own use that the environment lacks. Those of buddy
 * definitions are not among them: a buddy whose variable is missing shows that as its own problem while
 * the others run (services/buddies/src/runner/buddy-session.ts), as its definitions may change at runtime.
 */
function missingSecrets(config: z.output<typeof configSchema>, secrets: Secrets): string[] {
  const problems: string[] = [];
  for (const [app, credentials] of Object.entries(config.push.apps)) {
    const name = credentials.apns?.passphraseEnv;
    if (name !== undefined && secrets.env(name) === undefined) {
      problems.push(
        `push.apps.${app}.apns.passphraseEnv: the environment variable ${name} is not set: set it to the passphrase of certKeyFile, or remove passphraseEnv if the key has none`,
      );
    }
  }
  return problems;
}
