/**
 * The smallest logger the coordination layer needs. A pino logger satisfies it
 * (`logger.warn({ err }, "message")`), so callers pass their pino instance directly;
 * this folder does not depend on pino.
 */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
};
