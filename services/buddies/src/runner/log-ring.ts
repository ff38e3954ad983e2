import type { Logger } from "#common/logger.ts";

/**
 * The recent log lines of one buddy, for the admin API (what the legacy console's lens icon showed). The
 * buddy's logger writes every line to the service log as usual and keeps a short copy here: the level, the
 * message and an error's message, never the fields (a kind could pass something private as a field).
 */

export interface LogLine {
  time: string;
  level: string;
  msg: string;
}

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;

export class LogRing {
  readonly #lines: LogLine[] = [];
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  push(line: LogLine): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.splice(0, this.#lines.length - this.#max);
  }
  lines(): LogLine[] {
    return [...this.#lines];
  }
}

function lineOf(level: string, args: unknown[]): LogLine {
  const [first, second] = args;
  let msg = typeof first === "string" ? first : typeof second === "string" ? second : "";
  const err = first && typeof first === "object" ? (first as { err?: unknown }).err : undefined;
  if (err instanceof Error) msg = msg ? `${msg}: ${err.message}` : err.message;
  return { time: new Date().toISOString(), level, msg };
}

/** `log` with every line at or above its level also kept in `ring`. */
export function teeLogger(log: Logger, ring: LogRing): Logger {
  return new Proxy(log, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== "string" || !(LEVELS as readonly string[]).includes(prop)) return value;
      return (...args: unknown[]) => {
        if (
          prop === "info" ||
          prop === "warn" ||
          prop === "error" ||
          prop === "fatal" ||
          target.isLevelEnabled(prop)
        )
          ring.push(lineOf(prop, args));
        return (value as (...a: unknown[]) => void).apply(target, args);
      };
    },
  });
}
