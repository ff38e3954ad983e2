import { DURATION_FORMS, durationMs } from "#common/durations.ts";
import { CliError } from "./context.ts";

/** `90d`, `12h`, `30m`, `2w` in milliseconds; a CliError (exit 2) naming the accepted forms otherwise. */
export function parseDuration(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new CliError(`--older-than: "${text}" is not a duration: ${DURATION_FORMS}`, 2);
  return ms;
}

/**
 * The moment `age` ago, never before 1970: `999999w` is a valid way to say "everything", but the moment it
 * names is before PostgreSQL's earliest timestamp, and nothing was stored before 1970 anyway.
 */
export function cutoffBefore(age: number): Date {
  return new Date(Math.max(0, Date.now() - age));
}
