/**
 * Errors shared by the services. A `StartupError` stops a process before it listens and is printed as
 * one line naming the problem and the fix; an `HttpError` is an answer with a stable code.
 */
export class StartupError extends Error {
  override name = "StartupError";
}

export class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export const notFound = (what = "resource") =>
  new HttpError(404, "not_found", `No such ${what}: check the path and the name.`);

export const databaseUnavailable = () =>
  new HttpError(
    503,
    "database_unavailable",
    "The database is not reachable right now; retry in a few seconds.",
    { "retry-after": "5" },
  );

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
