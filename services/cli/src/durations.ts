import { CliError } from "./context.ts";

const UNITS: Record<string, { ms: number; name: string }> = {
  m: { ms: 60_000, name: "minute" },
  h: { ms: 3_600_000, name: "hour" },
  d: { ms: 86_400_000, name: "day" },
  w: { ms: 7 * 86_400_000, name: "week" },
};

/** `90d`, `12h`, `30m`, `2w` in milliseconds; a CliError (exit 2) naming the accepted forms otherwise. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  const unit = m?.[2] ? UNITS[m[2]] : undefined;
  if (!m || !unit || Number(m[1]) === 0) {
    throw new CliError(
      `--older-than: "${text}" is not a duration: write a positive whole number and a unit, m (minutes), h (hours), d (days) or w (weeks), such as 90d`,
      2,
    );
  }
  return Number(m[1]) * unit.ms;
}

/**
 * The moment `age` ago, never before 1970: `999999w` is a valid way to say "everything", but the moment it
 * names is before PostgreSQL's earliest timestamp, and nothing was stored before 1970 anyway.
 */
export function cutoffBefore(age: number): Date {
  return new Date(Math.max(0, Date.now() - age));
}
