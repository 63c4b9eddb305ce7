import pino, { type Logger } from "pino";

/** Structured JSON logs on stdout. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { service: "herald", ...base }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
