/**
 * Ages written as a whole number and a unit (`90d`, `12h`, `30m`, `2w`): the CLI's `--older-than` and the
 * config's `retention` section read the same format, so an operator writes one way everywhere.
 */

const UNITS: Record<string, number> = {
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

export const DURATION_FORMS =
  "write a positive whole number and a unit, m (minutes), h (hours), d (days) or w (weeks), such as 90d";

/** `text` in milliseconds, or undefined when it is not such a duration (zero included). */
export function durationMs(text: string): number | undefined {
  const m = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  const unit = m?.[2] ? UNITS[m[2]] : undefined;
  if (!m || unit === undefined || Number(m[1]) === 0) return undefined;
  return Number(m[1]) * unit;
}
