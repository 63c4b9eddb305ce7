import { createHash, randomUUID } from "node:crypto";
import { createClient } from "redis";
import {
  assertKey,
  assertLockHandle,
  type ControlMessage,
  type ControlMessageHandler,
  CoordinationUnavailableError,
  type Coordinator,
  checkOutgoingMessage,
  DEFAULT_PREFIX,
  isCoordinationUnavailable,
  type LockHandle,
  normaliseTtl,
  parseControlMessage,
} from "./coordinator.ts";
import { deliver } from "./in-process-coordinator.ts";
import { type Logger, silentLogger } from "./logger.ts";

export interface RedisCoordinatorOptions {
  /** `redis://…` or `rediss://…` */
  url: string;
  /** Namespace for keys and channels; default `herald:`. */
  prefix?: string;
  logger?: Logger;
  /** Longest time any call may take before it rejects with COORDINATION_UNAVAILABLE; default 500 ms. */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts; default 2000 ms. */
  maxReconnectDelayMs?: number;
  /** Longest time one TCP connection attempt may take; default 2000 ms. */
  connectTimeoutMs?: number;
  /** CLIENT SETNAME of the command connection (the subscriber one gets `:sub` appended); default `herald`. */
  clientName?: string;
}

/** Extend the lock only if the caller still owns it. */
const REFRESH_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  return 0
end`;

/** Delete the lock only if the caller still owns it. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
else
  return 0
end`;

interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

const REFRESH = script(REFRESH_SCRIPT);
const RELEASE = script(RELEASE_SCRIPT);

type ConnectionState = "connecting" | "ready" | "down" | "closed";

type RedisClient = ReturnType<typeof createClient>;

/**
 * Tracks one node-redis client's connection state for fail-fast calls: while the very first
 * connection attempt is under way a call waits for it (within its time bound); once the
 * connection is known to be down, calls reject at once instead of queueing.
 */
class Connection {
  state: ConnectionState = "connecting";
  readonly #waiters = new Set<() => void>();

  constructor(
    readonly client: RedisClient,
    readonly role: "commands" | "subscriber",
    readonly logger: Logger,
    readonly target: string,
  ) {
    client.on("ready", () => {
      const was = this.state;
      this.#set("ready");
      if (was === "down")
        this.logger.info({ role, redis: target }, "coordination: redis connection restored");
    });
    client.on("error", (err: unknown) => {
      const was = this.state;
      if (was === "closed") return;
      this.#set("down");
      if (was !== "down") {
        this.logger.warn(
          { role, redis: target, err },
          "coordination: redis connection is down; retrying in the background",
        );
      }
    });
    client.on("end", () => {
      if (this.state !== "closed") this.#set("down");
    });
  }

  start(): void {
    this.client.connect().catch((err: unknown) => {
      // Only reachable if the reconnect strategy gave up, which ours never does.
      if (this.state !== "closed") {
        this.#set("down");
        this.logger.error({ role: this.role, redis: this.target, err }, "coordination: redis connect failed");
      }
    });
  }

  get ready(): boolean {
    return this.state === "ready" && this.client.isReady;
  }

  /** Resolves when usable; rejects with COORDINATION_UNAVAILABLE otherwise (never after `deadline`). */
  async whenReady(deadline: number): Promise<void> {
    if (this.ready) return;
    if (this.state === "connecting") {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        this.#waiters.add(done);
      });
      if (this.ready) return;
    }
    throw new CoordinationUnavailableError(
      this.state === "closed"
        ? "coordinator is closed"
        : `redis is unavailable (${this.role} connection ${this.state})`,
    );
  }

  async close(timeoutMs: number): Promise<void> {
    const wasReady = this.ready;
    this.#set("closed");
    if (wasReady) {
      try {
        await withDeadline(this.client.close(), Date.now() + timeoutMs, "close");
        return;
      } catch {
        // fall through to destroy
      }
    }
    try {
      this.client.destroy();
    } catch {
      // already closed
    }
  }

  #set(state: ConnectionState): void {
    this.state = state;
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** Races `promise` against `deadline`; on expiry rejects with COORDINATION_UNAVAILABLE. */
function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CoordinationUnavailableError(`redis did not answer ${what} in time`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function redactedTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}`;
  } catch {
    throw new TypeError("REDIS url is not a valid URL");
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}

/**
 * Locks and control messages on Redis (node-redis v5): one connection for commands, a
 * duplicate for subscriptions. No call ever hangs: each is bounded by `commandTimeoutMs` and
 * rejects with an error whose `code` is COORDINATION_UNAVAILABLE when Redis is down or slow.
 * Reconnection runs in the background with a capped exponential back-off; subscriptions are
 * re-established on reconnect.
 *
 * The returned coordinator is usable at once; the connection is made in the background.
 */
export function createRedisCoordinator(options: RedisCoordinatorOptions): Coordinator {
  const target = redactedTarget(options.url);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const logger = options.logger ?? silentLogger;
  const commandTimeoutMs = options.commandTimeoutMs ?? 500;
  const maxReconnectDelayMs = options.maxReconnectDelayMs ?? 2000;
  const clientName = options.clientName ?? "herald";

  const client = createClient({
    url: options.url,
    name: clientName,
    disableOfflineQueue: true,
    commandOptions: { timeout: commandTimeoutMs },
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 2000,
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 16), maxReconnectDelayMs) + Math.floor(Math.random() * 100),
    },
  });
  const subscriberClient = client.duplicate({ name: `${clientName}:sub` });
  const main = new Connection(client, "commands", logger, target);
  const sub = new Connection(subscriberClient, "subscriber", logger, target);
  main.start();
  sub.start();

  let closed = false;
  let closing: Promise<void> | undefined;
  /** Set when a call timed out on a seemingly live connection; cleared by the next success. */
  let slow = false;

  /** Runs one Redis call on `conn` within the time bound, mapping every failure to COORDINATION_UNAVAILABLE. */
  async function run<T>(conn: Connection, what: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new CoordinationUnavailableError("coordinator is closed");
    const deadline = Date.now() + commandTimeoutMs;
    await conn.whenReady(deadline);
    try {
      const result = await withDeadline(fn(), deadline, what);
      slow = false;
      return result;
    } catch (err) {
      if (err instanceof CoordinationUnavailableError || (err as { name?: string }).name === "TimeoutError") {
        slow = conn.ready; // a timeout while "connected" means Redis is hung or overloaded
      }
      if (isCoordinationUnavailable(err)) throw err;
      throw new CoordinationUnavailableError(
        `redis ${what} failed: ${(err as Error)?.message ?? String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  async function evalScript(s: Script, key: string, args: string[]): Promise<number> {
    const params = { keys: [key], arguments: args };
    try {
      return Number(await client.evalSha(s.sha, params));
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return Number(await client.eval(s.source, params));
    }
  }

  // ---- subscriptions -------------------------------------------------------------------
  // One node-redis listener for every channel; our own registry fans out to handlers. Redis
  // holds one SUBSCRIBE per channel while it has at least one handler; node-redis replays
  // those SUBSCRIBEs when the subscriber connection comes back.

  interface Entry {
    handler: ControlMessageHandler;
    /** False until the channel's SUBSCRIBE is confirmed, and again once unsubscribed. */
    active: boolean;
  }
  /** Handlers per prefixed channel, including those still waiting for their SUBSCRIBE. */
  const handlers = new Map<string, Set<Entry>>();
  /** Channels whose SUBSCRIBE Redis has confirmed (and not since been dropped). */
  const established = new Set<string>();
  const subscribing = new Map<string, Promise<void>>();

  const onMessage = (raw: string, channel: string): void => {
    const entries = handlers.get(channel);
    if (!entries || entries.size === 0) return;
    const message = parseControlMessage(raw);
    if (message === null) {
      logger.warn(
        { channel, message: raw.slice(0, 200) },
        "coordination: ignoring malformed control message",
      );
      return;
    }
    for (const entry of [...entries]) {
      if (entry.active) deliver(entry.handler, { ...message }, channel, logger);
    }
  };

  async function ensureSubscribed(fullChannel: string): Promise<void> {
    if (established.has(fullChannel)) return;
    const inFlight = subscribing.get(fullChannel);
    if (inFlight) return inFlight;
    const attempt = run(sub, "SUBSCRIBE", () => subscriberClient.subscribe(fullChannel, onMessage)).then(
      () => {
        established.add(fullChannel);
      },
      (err: unknown) => {
        // The SUBSCRIBE may still land later; queue its undo so no stray subscription lingers.
        if (!closed) subscriberClient.unsubscribe(fullChannel, onMessage).catch(() => {});
        throw err;
      },
    );
    subscribing.set(fullChannel, attempt);
    try {
      await attempt;
    } finally {
      subscribing.delete(fullChannel);
    }
  }

  function removeEntry(fullChannel: string, entry: Entry): boolean {
    entry.active = false;
    const entries = handlers.get(fullChannel);
    if (!entries?.delete(entry) || entries.size > 0) return false;
    handlers.delete(fullChannel);
    return true;
  }

  async function dropChannel(fullChannel: string): Promise<void> {
    if (closed) return;
    try {
      await run(sub, "UNSUBSCRIBE", () => subscriberClient.unsubscribe(fullChannel, onMessage));
    } catch (err) {
      // Delivery has already stopped (no handlers left); a lingering Redis subscription is harmless.
      logger.warn({ channel: fullChannel, err }, "coordination: could not unsubscribe from redis channel");
    }
  }

  return {
    kind: "redis",

    async tryLock(key: string, ttlMs: number): Promise<LockHandle | null> {
      assertKey(key);
      const ttl = normaliseTtl(ttlMs);
      const token = randomUUID();
      const fullKey = prefix + key;
      try {
        const reply = await run(main, "SET NX", () =>
          client.set(fullKey, token, { condition: "NX", expiration: { type: "PX", value: ttl } }),
        );
        return reply === "OK" ? { key, token } : null;
      } catch (err) {
        // If the SET reached Redis after all, free the lock rather than leave it for the TTL.
        if (main.ready && !closed) evalScript(RELEASE, fullKey, [token]).catch(() => {});
        throw err;
      }
    },

    async refresh(lock: LockHandle, ttlMs: number): Promise<boolean> {
      assertLockHandle(lock);
      const ttl = normaliseTtl(ttlMs);
      const reply = await run(main, "refresh", () =>
        evalScript(REFRESH, prefix + lock.key, [lock.token, String(ttl)]),
      );
      return reply === 1;
    },

    async release(lock: LockHandle): Promise<boolean> {
      assertLockHandle(lock);
      const reply = await run(main, "release", () => evalScript(RELEASE, prefix + lock.key, [lock.token]));
      return reply === 1;
    },

    async isLocked(key: string): Promise<boolean> {
      assertKey(key);
      const reply = await run(main, "EXISTS", () => client.exists(prefix + key));
      return Number(reply) > 0;
    },

    async lockedAmong(keys: readonly string[]): Promise<Set<string>> {
      for (const key of keys) assertKey(key);
      if (keys.length === 0) return new Set();
      const values = await run(main, "MGET", () => client.mGet(keys.map((k) => prefix + k)));
      return new Set(keys.filter((_, i) => values[i] !== null));
    },

    async publish(channel: string, message: ControlMessage): Promise<void> {
      assertKey(channel, "channel");
      const clean = checkOutgoingMessage(message);
      await run(main, "PUBLISH", () => client.publish(prefix + channel, JSON.stringify(clean)));
    },

    async subscribe(channel: string, handler: ControlMessageHandler): Promise<() => Promise<void>> {
      assertKey(channel, "channel");
      if (typeof handler !== "function") throw new TypeError("handler must be a function");
      if (closed) throw new CoordinationUnavailableError("coordinator is closed");
      const fullChannel = prefix + channel;
      // Register first (inactive), so a concurrent unsubscribe of the channel's last handler
      // does not drop the Redis subscription this call is about to rely on.
      const entry: Entry = { handler, active: false };
      let entries = handlers.get(fullChannel);
      if (!entries) {
        entries = new Set();
        handlers.set(fullChannel, entries);
      }
      entries.add(entry);
      try {
        await ensureSubscribed(fullChannel);
        if (closed) throw new CoordinationUnavailableError("coordinator is closed");
      } catch (err) {
        removeEntry(fullChannel, entry);
        throw err;
      }
      entry.active = true;
      let subscribed = true;
      return async () => {
        if (!subscribed) return;
        subscribed = false;
        if (removeEntry(fullChannel, entry)) {
          established.delete(fullChannel);
          await dropChannel(fullChannel);
        }
      };
    },

    healthy(): boolean {
      return !closed && main.ready && sub.ready && !slow;
    },

    close(): Promise<void> {
      if (!closing) {
        closed = true;
        for (const entries of handlers.values()) {
          for (const entry of entries) entry.active = false;
        }
        handlers.clear();
        established.clear();
        closing = Promise.all([main.close(commandTimeoutMs * 2), sub.close(commandTimeoutMs * 2)]).then(
          () => undefined,
        );
      }
      return closing;
    },
  };
}
