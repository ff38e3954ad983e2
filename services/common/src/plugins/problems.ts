import { readFileSync } from "node:fs";
import type { z } from "zod";
import { StartupProblems } from "../errors.ts";
import { fromRoot } from "../paths.ts";
import { formatIssues, type Issue, issuesOf } from "../zod-issues.ts";

/**
 * The one format of a plugin problem, as of a config problem: `<config key>: <problem>: <fix>`, e.g.
 * `domains.example.org.authenticator: kind "ldapp" is unknown: use one of web_users, http, module` or
 * `media.storage.options.bucket: required: the S3 bucket name`. The key is where the operator edits; the fix is
 * what to write there.
 */

/** Where a plugin's config sits: `{ kind, options }` at `key`, its options at `optionsKey`. */
export interface PluginSite {
  key: string;
  optionsKey: string;
}

/** `"media.storage"` is `{ key: "media.storage", optionsKey: "media.storage.options" }`. */
export function siteOf(at: string | PluginSite): PluginSite {
  return typeof at === "string" ? { key: at, optionsKey: `${at}.options` } : at;
}

/**
 * Thrown by a definition's `create` about one of its options (a file it cannot read, a template it cannot
 * fill): the registry reports it at that option's key. `path` is relative to the options; "" is all of them.
 */
export class OptionError extends Error {
  override name = "OptionError";
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

/**
 * A file an option names (a CA, a key, a secret), relative to the project root or absolute; unreadable, an
 * OptionError at `option` saying why and what to fix.
 */
export function readOptionFile(option: string, file: string): Buffer {
  try {
    return readFileSync(fromRoot(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new OptionError(option, `cannot read ${file} (${code}): fix the path or the file's permissions`);
  }
}

export function keyAt(base: string, path: string): string {
  return path ? `${base}.${path}` : base;
}

export type OptionsResult<T> =
  | { ok: true; options: T }
  /** `issues`: what the schema said, when it said it as zod issues. */
  | { ok: false; problems: string[]; issues?: readonly Issue[] };

/**
 * Options refused after the start (a buddy definition changed at runtime): the problems as lines, and the
 * schema's issues for code that reads them.
 */
export class InvalidOptionsError extends Error {
  override name = "InvalidOptionsError";
  readonly problems: string[];
  readonly issues: readonly Issue[];
  constructor(result: { problems: string[]; issues?: readonly Issue[] }) {
    super(result.problems.join("; "));
    this.problems = result.problems;
    this.issues = result.issues ?? [];
  }
}

/**
 * `raw` parsed by a definition's schema, or every problem, each at its key under `optionsKey`. A schema
 * from a third-party module may be anything with `parse`: what it throws is the problem then.
 */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  optionsKey: string,
): OptionsResult<z.output<S>> {
  const input = raw ?? {};
  if (typeof schema.safeParse === "function") {
    const parsed = schema.safeParse(input, { reportInput: true });
    if (parsed.success) return { ok: true, options: parsed.data };
    const { issues } = parsed.error;
    return { ok: false, problems: formatIssues(issues, { at: optionsKey, schema }), issues };
  }
  try {
    return { ok: true, options: (schema as { parse(v: unknown): z.output<S> }).parse(input) };
  } catch (err) {
    const issues = issuesOf(err);
    return {
      ok: false,
      problems: problemsOf(err, { key: optionsKey, optionsKey }),
      ...(issues && { issues }),
    };
  }
}

/**
 * What a failed `create` (or a module's `parse`) threw, as problems at `site`: an OptionError at its option,
 * zod issues at theirs, problems already formatted as they are, anything else at the plugin's key
 * (`<key>: <what> failed: <message>: see <docs>`).
 */
export function problemsOf(
  err: unknown,
  site: PluginSite,
  failed?: { what: string; docs: string },
): string[] {
  if (err instanceof StartupProblems) return err.problems;
  if (err instanceof OptionError) return [`${keyAt(site.optionsKey, err.path)}: ${err.message}`];
  const issues = issuesOf(err);
  if (issues) return formatIssues(issues, { at: site.optionsKey });
  const message = err instanceof Error ? err.message : String(err);
  // a plugin that names the key itself (`push.apps.X.apns.keyFile: cannot read …`) said it all
  if (message.startsWith(`${site.key}.`) || message.startsWith(`${site.key}:`)) return [message];
  return [
    `${site.key}: ${failed ? `${failed.what}: ` : ""}${message}${failed ? `: see ${failed.docs}` : ""}`,
  ];
}

/**
 * Problems of several plugins, gathered while each is created and thrown together, so that one start
 * lists them all (as config problems are).
 */
export class ProblemCollector {
  readonly problems: string[] = [];

  /** Records the problems a registry threw; anything else is a bug and is thrown on. */
  add(err: unknown): void {
    if (!(err instanceof StartupProblems)) throw err;
    this.problems.push(...err.problems);
  }

  get any(): boolean {
    return this.problems.length > 0;
  }

  throwIfAny(): void {
    if (this.any) throw new StartupProblems(this.problems);
  }
}
