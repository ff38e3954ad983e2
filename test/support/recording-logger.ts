import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";

/**
 * A pino logger whose lines are kept in memory, for tests that check what was logged (or that a secret was
 * not). Writes are synchronous: a line is in `lines` as soon as the logging call returns.
 */

/** One line as pino writes it, parsed. `level` is a number unless the options' formatters change it. */
export interface LogLine {
  level: number;
  time?: number;
  msg?: string;
  [key: string]: unknown;
}

export interface RecordingLoggerOptions extends LoggerOptions {
  /** Which lines to keep (all of them unless given); `level` still decides which are written at all. */
  keep?: (line: LogLine) => boolean;
}

export interface RecordingLogger {
  log: Logger;
  /** every kept line, parsed, in the order written */
  lines: LogLine[];
  /** every kept line exactly as pino wrote it (each ends with "\n"), joined */
  text(): string;
  /** forgets every line kept so far (`lines` stays the same array) */
  clear(): void;
}

/** `options` are pino's (`level`, `redact`, `formatters`…, pino's defaults otherwise) plus `keep`. */
export function recordingLogger(options: RecordingLoggerOptions = {}): RecordingLogger {
  const { keep, ...pinoOptions } = options;
  const lines: LogLine[] = [];
  const written: string[] = [];
  const destination: DestinationStream = {
    write(chunk: string) {
      // one record per write from pino itself; split anyway, a chunk may hold several lines
      for (const text of chunk.split("\n")) {
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        if (keep && !keep(line)) continue;
        lines.push(line);
        written.push(`${text}\n`);
      }
    },
  };
  return {
    log: pino(pinoOptions, destination),
    lines,
    text: () => written.join(""),
    clear() {
      lines.length = 0;
      written.length = 0;
    },
  };
}
