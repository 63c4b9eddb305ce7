import type { Coordinator } from "./coordinator.ts";
import { createInProcessCoordinator } from "./in-process-coordinator.ts";
import type { Logger } from "./logger.ts";

export {
  assertKey,
  CONTROL_CHANNEL,
  CONTROL_MESSAGE_TYPES,
  COORDINATION_UNAVAILABLE,
  type ControlMessage,
  type ControlMessageHandler,
  type ControlMessageType,
  CoordinationUnavailableError,
  type Coordinator,
  DEFAULT_PREFIX,
  drainLockKey,
  isCoordinationUnavailable,
  type LockHandle,
  MAX_QUEUED_IDS,
  parseControlMessage,
  subscriptionsOf,
  toControlMessage,
} from "./coordinator.ts";
export {
  createInProcessCoordinator,
  type InProcessCoordinatorOptions,
  InProcessHub,
} from "./in-process-coordinator.ts";
export { type Logger, silentLogger } from "./logger.ts";
export type { RedisCoordinatorOptions } from "./redis-coordinator.ts";

export interface CreateCoordinatorOptions {
  /** Redis URL (`REDIS_URL`); without it, locks and messages stay inside this process. */
  redisUrl?: string | undefined;
  /** Namespace for keys and channels; default `herald:`. */
  prefix?: string;
  logger?: Logger;
  /** Bound on one Redis command (ms); the Redis coordinator's default otherwise. */
  commandTimeoutMs?: number;
}

/**
 * Redis when a URL is given, in-process (single process only) otherwise. The Redis client is imported only
 * when it is used, so that a process without Redis (the embedded store) does not hold it in memory.
 */
export async function createCoordinator(options: CreateCoordinatorOptions = {}): Promise<Coordinator> {
  const { redisUrl, prefix, logger, commandTimeoutMs } = options;
  if (redisUrl !== undefined && redisUrl.trim() !== "") {
    const { createRedisCoordinator } = await import("./redis-coordinator.ts");
    return createRedisCoordinator({
      url: redisUrl,
      ...(commandTimeoutMs !== undefined ? { commandTimeoutMs } : {}),
      ...(prefix !== undefined ? { prefix } : {}),
      ...(logger !== undefined ? { logger } : {}),
    });
  }
  return createInProcessCoordinator({
    ...(prefix !== undefined ? { prefix } : {}),
    ...(logger !== undefined ? { logger } : {}),
  });
}
