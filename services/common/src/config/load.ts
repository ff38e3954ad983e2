import { readFileSync } from "node:fs";
import path from "node:path";
import type { z } from "zod";
import { StartupError } from "../errors.ts";
import { projectRoot } from "../paths.ts";
import { ENV_OVERRIDES } from "./env-overrides.ts";
import { type Config, configSchema } from "./schema.ts";

export const APP_ENVS = ["development", "test", "demo", "production"] as const;

/** Every problem found in the configuration, listed at once. */
export class ConfigError extends StartupError {
  override name = "ConfigError";
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      problems.length === 1
        ? `config: ${problems[0]}`
        : `config: ${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    this.problems = problems;
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

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
  if (issue.code === "unrecognized_keys") {
    return `${key === "(top level)" ? "" : `${key}.`}${issue.keys.join(", ")}: unknown key; remove it or check its spelling`;
  }
  if (issue.code === "invalid_key") {
    return `${key}: ${issue.issues[0]?.message ?? issue.message}`;
  }
  if (issue.code === "invalid_type" && issue.input === undefined) {
    return `${key}: missing; add it to config/default.json or config/<env>.json`;
  }
  return `${key}: ${issue.message}`;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  configDir?: string;
  /** Extra values merged last, for tests and the CLI. */
  overrides?: Json;
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
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) problems.push(...parsed.error.issues.map(describeIssue));
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
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}
