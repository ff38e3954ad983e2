/**
 * Errors shared by the services. A `StartupError` stops a process before it listens and is printed as
 * one line naming the problem and the fix; an `HttpError` is an answer with a stable code.
 */
export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * Every problem found before the start, listed at once (config files, plugin kinds and options): fixing one
 * line and restarting only to meet the next is what this spares the operator. Each problem is one line
 * `<config key>: <problem>: <fix>` (zod-issues.ts, plugins/problems.ts).
 */
export class StartupProblems extends StartupError {
  override name = "StartupProblems";
  readonly problems: string[];
  constructor(problems: string[], prefix?: string) {
    const head = prefix ? `${prefix}: ` : "";
    super(
      problems.length === 1
        ? `${head}${problems[0]}`
        : `${head}${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    this.problems = problems;
  }
}

export class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  /** Fields the error object carries besides code and message (`{ error: { code, message, ...details } }`). */
  readonly details: Record<string, unknown>;
  constructor(
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
    details: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.details = details;
  }
}

/**
 * One error of a service's catalogue: its answer is declared once, with a one-line description that the
 * OpenAPI document lists under the status (common/src/http/route-openapi.ts). `message`, `headers` and
 * `details` are functions of the factory's arguments when they name values.
 */
export interface ErrorSpec<A extends unknown[] = never[]> {
  status: number;
  code: string;
  /** What the code means to a client, in one line, for the API's documentation. */
  description: string;
  message: string | ((...args: A) => string);
  headers?: Record<string, string> | ((...args: A) => Record<string, string>);
  details?: (...args: A) => Record<string, unknown>;
}

/** What the documentation reads of a catalogue entry. */
export interface ErrorEntry {
  readonly status: number;
  readonly code: string;
  readonly description: string;
}

/** A catalogue entry: call it to make the error (`errors.unknownApp("X")`), read it to document it. */
export type ErrorFactory<A extends unknown[] = []> = ((...args: A) => HttpError) & ErrorEntry;

// biome-ignore lint/suspicious/noExplicitAny: the arguments are inferred from each spec's own functions
type AnySpec = ErrorSpec<any>;
type ArgsOf<S extends AnySpec> = S["message"] extends (...args: infer A) => string
  ? A
  : S["headers"] extends (...args: infer A) => Record<string, string>
    ? A
    : S["details"] extends (...args: infer A) => Record<string, unknown>
      ? A
      : [];

export function defineError<S extends AnySpec>(spec: S): ErrorFactory<ArgsOf<S>> {
  const { status, code, description, message, headers, details } = spec;
  const make = (...args: ArgsOf<S>) =>
    new HttpError(
      status,
      code,
      typeof message === "function" ? message(...args) : message,
      typeof headers === "function" ? headers(...args) : headers,
      details?.(...args),
    );
  return Object.assign(make, { status, code, description });
}

const CODE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/**
 * What is wrong with a catalogue, one line a problem: a code that is not snake_case, a status that is not an
 * error, a description that is not one line, or one error declared twice (same status, code and
 * description under two names). Each service's catalogue test expects none.
 */
export function catalogueProblems(catalogue: Readonly<Record<string, ErrorEntry>>): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [name, e] of Object.entries(catalogue)) {
    if (!CODE.test(e.code)) problems.push(`${name}: code "${e.code}" is not snake_case`);
    if (!(e.status >= 400 && e.status <= 599)) problems.push(`${name}: status ${e.status} is not an error`);
    if (!/^\S[^\n]*$/.test(e.description)) problems.push(`${name}: the description must be one line`);
    const key = `${e.status} ${e.code} ${e.description}`;
    const first = seen.get(key);
    if (first) problems.push(`${name} repeats ${first}`);
    else seen.set(key, name);
  }
  return problems;
}

/** A service's catalogue: `defineErrors({ unknownApp: { status: 404, code: "unknown_app", … } })`. */
export function defineErrors<C extends Record<string, AnySpec>>(
  specs: C,
): { [K in keyof C]: ErrorFactory<ArgsOf<C[K]>> } {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, defineError(spec)])) as {
    [K in keyof C]: ErrorFactory<ArgsOf<C[K]>>;
  };
}

export const notFound = defineError({
  status: 404,
  code: "not_found",
  description: "nothing answers to this path or name",
  message: (what = "resource") => `No such ${what}: check the path and the name.`,
});

export const databaseUnavailable = defineError({
  status: 503,
  code: "database_unavailable",
  description: "the database cannot be reached for a moment; retry after `Retry-After`",
  message: "The database is not reachable right now; retry in a few seconds.",
  headers: { "retry-after": "5" },
});

/** pg error codes and socket errors that mean "the database is away", not "the query is wrong". */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    err.message,
  );
}
