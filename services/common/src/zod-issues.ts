import type { z } from "zod";

/**
 * The one way a zod issue becomes a line for an operator: `<key>: <problem>[: <fix>]`, the key being the
 * full path from the config's top (`domains.a.test.authenticator.options.url`). Config loading, plugin
 * options and the CLI use it, so the same mistake reads the same wherever it is made. With the schema that
 * was parsed it can say more than zod does: the keys allowed where an unknown one is, and the description
 * of a missing one (the same text the README's configuration reference shows).
 */

export type Issue = z.core.$ZodIssue;

export interface IssueFormat {
  /** Where the parsed value sits, put before every issue's path: `media.storage.options`. */
  at?: string;
  /** The schema that was parsed: names the keys allowed and describes what is missing. */
  schema?: z.ZodType;
  /** What to do about a missing value, after its description: "add it to config/default.json". */
  missing?: string;
}

/** A ZodError, or anything else carrying zod issues (a kind built with another copy of zod). */
export function issuesOf(err: unknown): readonly Issue[] | undefined {
  const issues = (err as { issues?: unknown } | null)?.issues;
  return Array.isArray(issues) && issues.every((i) => typeof i?.message === "string")
    ? (issues as Issue[])
    : undefined;
}

/** Every issue, one line each. */
export function formatIssues(issues: readonly Issue[], format: IssueFormat = {}): string[] {
  return issues.map((issue) => formatIssue(issue, format));
}

export function formatIssue(issue: Issue, format: IssueFormat = {}): string {
  const key = keyOf(format.at, issue.path);
  if (issue.code === "unrecognized_keys") {
    const allowed = format.schema ? objectKeysAt(format.schema, issue.path) : undefined;
    const fix =
      allowed === undefined
        ? "remove it or check its spelling"
        : allowed.length === 0
          ? "none is taken here: remove it"
          : `remove it, or use one of ${allowed.join(", ")}`;
    const keys = issue.keys.map((k) => keyOf(key === "(top level)" ? undefined : key, [k]));
    return `${keys.join(", ")}: unknown key: ${fix}`;
  }
  if (issue.code === "invalid_key") return `${key}: ${issue.issues[0]?.message ?? issue.message}`;
  if (isMissing(issue)) {
    const description = format.schema ? descriptionAt(format.schema, issue.path) : undefined;
    const parts = [description, format.missing].filter((p): p is string => !!p);
    return `${key}: required: ${parts.length > 0 ? parts.join(": ") : "add it"}`;
  }
  return `${key}: ${issue.message}`;
}

function keyOf(at: string | undefined, path: readonly PropertyKey[]): string {
  const parts = [...(at ? [at] : []), ...path.map(String)];
  return parts.length > 0 ? parts.join(".") : "(top level)";
}

/** A value that is not there at all (parsed with `reportInput: true`; else told by zod's message). */
function isMissing(issue: Issue): boolean {
  if (issue.code !== "invalid_type") return false;
  if ("input" in issue) return issue.input === undefined;
  return /received undefined$/.test(issue.message);
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
}

/** A schema's definition; a parser that is not zod (a third-party module's `{ parse }`) has none to read. */
const defOf = (s: z.ZodType): Def =>
  (s as unknown as { _zod?: { def?: Def } })._zod?.def ?? { type: "unknown" };

/** The schema itself and the schemas it wraps (optional, default, pipe…), outermost first. */
function layers(schema: z.ZodType): z.ZodType[] {
  const out: z.ZodType[] = [];
  let s: z.ZodType | undefined = schema;
  while (s && out.length < 20) {
    out.push(s);
    const d = defOf(s);
    s = d.innerType ?? (d.type === "pipe" ? d.in : d.type === "lazy" ? d.getter?.() : undefined);
  }
  return out;
}

/** The schema of the value at `path`, or undefined where it cannot be told (a union of objects…). */
function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const key of path) {
    if (!s) return undefined;
    let next: z.ZodType | undefined;
    for (const layer of layers(s)) {
      const d = defOf(layer);
      if (d.type === "object") next = d.shape?.[String(key)];
      else if (d.type === "record") next = d.valueType;
      else if (d.type === "array") next = d.element;
      if (next) break;
    }
    s = next;
  }
  return s;
}

function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  const s = schemaAt(schema, path);
  const object = s && layers(s).find((l) => defOf(l).type === "object");
  return object ? Object.keys(defOf(object).shape ?? {}) : undefined;
}

function descriptionAt(schema: z.ZodType, path: readonly PropertyKey[]): string | undefined {
  const s = schemaAt(schema, path);
  return s ? layers(s).find((l) => l.description)?.description : undefined;
}
