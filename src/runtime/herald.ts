import type { FastifyInstance } from "fastify";
import { resolveAdminToken } from "../admin-token.ts";
import { buildApp } from "../api/app.ts";
import type { Settings } from "../config.ts";
import {
  CONTROL_CHANNEL,
  type ControlMessage,
  type Coordinator,
  createCoordinator,
  drainLockKey,
  MAX_QUEUED_IDS,
  subscriptionsOf,
} from "../coordination/index.ts";
import { Dispatcher } from "../dispatch/dispatcher.ts";
import { PushDrain } from "../dispatch/push-drain.ts";
import { RetriggerRunner } from "../dispatch/retrigger-runner.ts";
import { Scheduler } from "../dispatch/scheduler.ts";
import { StatisticsKeeper } from "../dispatch/statistics-keeper.ts";
import { createSender } from "../http/sender.ts";
import { createLogger, type Logger } from "../log.ts";
import { createMetrics, type Metrics } from "../metrics.ts";
import { Sampler } from "../panel/sampler.ts";
import type { ServiceContext, ServiceHooks } from "../service/context.ts";
import { resolveEncryptionKeys } from "../store/data-dir.ts";
import type { Db } from "../store/db.ts";
import { migrate } from "../store/migrate.ts";
import { openStore } from "../store/open.ts";
import { resealSecrets } from "../store/reseal.ts";
import { SecretBox } from "../store/secret-box.ts";

export interface Roles {
  api: boolean;
  dispatcher: boolean;
}

/** A part of the process with a lifecycle; stop() is safe to call twice. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface HeraldProcess {
  settings: Settings;
  ctx: ServiceContext;
  app: FastifyInstance | null;
  /** Where the API listens, e.g. http://127.0.0.1:8080 (null without the api role). */
  url: string | null;
  adminToken: string;
  /** Seals and opens signing secrets (src/store/secret-box.ts). */
  secrets: SecretBox;
  metrics: Metrics;
  dispatcher: Dispatcher | null;
  scheduler: Scheduler | null;
  pushDrain: PushDrain | null;
  retriggerRunner: RetriggerRunner | null;
  coordinator: Coordinator;
  stop(): Promise<void>;
}

export interface StartOptions {
  roles: Roles;
  migrate?: boolean;
  logger?: Logger;
  /** Use this store instead of opening one from the settings (tests). */
  db?: Db;
}

/** Starts the roles asked for, on one store; returns once the API listens. */
export async function startHerald(settings: Settings, opts: StartOptions): Promise<HeraldProcess> {
  const log = opts.logger ?? createLogger(settings.logLevel);
  const { token: adminToken, created } = settings.databaseUrl
    ? { token: settings.adminToken ?? "", created: false }
    : resolveAdminToken(settings.adminToken, settings.dataDir);
  // The data directory's key file only for the embedded store opened from it here.
  const secrets = new SecretBox(
    resolveEncryptionKeys(settings.encryptionKeys, settings.databaseUrl || opts.db ? null : settings.dataDir),
  );
  const db = opts.db ?? (await openStore(settings, opts.roles.api ? "herald-api" : "herald-dispatcher", log));
  const components: Component[] = [];
  let app: FastifyInstance | null = null;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (app) await app.close();
    for (const c of [...components].reverse()) {
      await c
        .stop()
        .catch((err: unknown) => log.error({ err, component: c.name }, "component failed to stop"));
    }
    if (!opts.db) await db.close();
  };
  try {
    if (opts.migrate !== false) {
      const { applied, current } = await migrate(db);
      log.info(
        { applied, schema_version: current },
        applied.length ? "migrations applied" : "schema up to date",
      );
    }
    const { resealed } = await resealSecrets(db, secrets);
    if (resealed > 0) {
      log.info(
        { subscriptions: resealed, key_id: secrets.primaryKid },
        "signing secrets sealed under the current key",
      );
    }
    const metrics = createMetrics();
    const origin = `${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    const coordinator = await createCoordinator({
      ...(settings.redisUrl ? { redisUrl: settings.redisUrl } : {}),
      prefix: settings.redisPrefix,
      // Nothing on the event's path waits for Redis (triggers run after the commit), so a busy Redis
      // gets two seconds before a call counts as "unavailable"; a Redis known to be down fails at once.
      commandTimeoutMs: 2000,
      logger: log.child({ component: "coordination" }),
    });
    components.push({ name: "coordinator", start: async () => {}, stop: () => coordinator.close() });
    const send = (message: ControlMessage) => {
      coordinator
        .publish(CONTROL_CHANNEL, message)
        .catch((err: unknown) =>
          log.warn(
            { err, type: message.type, subscription_id: message.subscription_id },
            "control message not sent",
          ),
        );
    };
    const publish = (type: ControlMessage["type"], subscriptionId: string) =>
      send({ type, subscription_id: subscriptionId, at: new Date().toISOString(), origin });
    /** New work in these queues, for the dispatchers: one message per MAX_QUEUED_IDS queues. */
    const publishQueued = (ids: readonly string[]) => {
      const at = new Date().toISOString();
      for (let i = 0; i < ids.length; i += MAX_QUEUED_IDS) {
        const some = ids.slice(i, i + MAX_QUEUED_IDS);
        send({ type: "queued", subscription_id: some[0]!, subscription_ids: some, at, origin });
      }
    };
    let dispatcher: Dispatcher | null = null;
    let scheduler: Scheduler | null = null;
    let pushDrain: PushDrain | null = null;
    let retriggerRunner: RetriggerRunner | null = null;
    /** New work in these queues: drain them now (push), or leave them to the scheduler. */
    const onQueued = (ids: readonly string[]) => {
      if (!settings.pushDrain) return;
      if (pushDrain) pushDrain.trigger(ids);
      else publishQueued(ids);
    };
    const onPaused = (ids: readonly string[]) => {
      for (const id of ids) publish("paused", id);
    };
    const hooks: ServiceHooks = {
      queued: onQueued,
      subscriptionChanged: (id, change) => {
        publish(change, id);
        if (change === "resumed" || change === "updated") {
          if (pushDrain && settings.pushDrain) pushDrain.trigger([id]);
          else dispatcher?.wake();
          // Its head may be in back-off: the scheduler learns when it falls due.
          scheduler?.nudge();
        }
      },
      retriggerQueued: () => retriggerRunner?.wake(),
    };
    const ctx: ServiceContext = { db, settings, log, hooks, secrets };
    if (opts.roles.dispatcher) {
      const sender = createSender({
        timeoutMs: settings.requestTimeoutMs,
        allowPrivate: settings.allowPrivateTargets,
      });
      components.push({ name: "sender", start: async () => {}, stop: () => sender.close() });
      const d = new Dispatcher({
        db,
        settings,
        secrets,
        log: log.child({ component: "dispatcher" }),
        sender,
        metrics,
        onPaused,
        onRetryQueued: (at) => scheduler?.dueAt(at),
        // The periodic path leaves alone the queues a push drain is working on.
        ...(settings.pushDrain
          ? {
              exclude: async (ids: readonly string[]) => {
                const keys = ids.map(drainLockKey);
                const held = await coordinator.lockedAmong(keys);
                const skip = new Set(ids.filter((_, i) => held.has(keys[i]!)));
                if (skip.size > 0) metrics.schedulerSkips.inc({ reason: "drain_lock_held" }, skip.size);
                return skip;
              },
            }
          : {}),
      });
      const sch = new Scheduler({
        db,
        settings,
        log: log.child({ component: "scheduler" }),
        metrics,
        wakeDispatcher: () => d.wake(),
        onPaused,
      });
      const pd = new PushDrain({
        db,
        settings,
        log: log.child({ component: "push-drain" }),
        metrics,
        coordinator,
        dispatcher: d,
      });
      dispatcher = d;
      scheduler = sch;
      pushDrain = pd;
      components.push(
        d,
        sch,
        pd,
        controlListener(coordinator, origin, log, (m) => {
          if (m.type === "queued" || m.type === "resumed" || m.type === "updated") {
            if (settings.pushDrain) pd.trigger(subscriptionsOf(m));
            else if (m.type !== "queued") d.wake();
            if (m.type !== "queued") sch.nudge();
          }
        }),
      );
      // Planner statistics: on PostgreSQL while the tables grow faster than autovacuum looks; the embedded
      // store (no autovacuum) every five minutes.
      components.push(new StatisticsKeeper({ db, log: log.child({ component: "statistics" }) }));
      // The panel's charts: pending and DLQ counts every HERALD_SAMPLE_INTERVAL_MS (docs/panel.md).
      components.push(
        new Sampler({ db, intervalMs: settings.sampleIntervalMs, log: log.child({ component: "sampler" }) }),
      );
      // Last, so it stops first: its current item still triggers push drains.
      retriggerRunner = new RetriggerRunner({
        db,
        settings,
        log: log.child({ component: "retrigger" }),
        hooks,
      });
      components.push(retriggerRunner);
    }
    for (const c of components) await c.start();
    let url: string | null = null;
    if (opts.roles.api) {
      app = await buildApp({
        ctx,
        adminToken,
        metrics: { contentType: metrics.registry.contentType, render: () => metrics.registry.metrics() },
      });
      url = await app.listen({ port: settings.port, host: settings.host });
      log.info({ url, store: db.kind }, "herald api listening");
    }
    if (created) {
      // Printed once, at the first start on a new data directory.
      process.stderr.write(
        `\nHerald admin token (kept in ${settings.dataDir}/admin-token):\n  ${adminToken}\n\n`,
      );
    }
    return {
      settings,
      ctx,
      app,
      url,
      adminToken,
      secrets,
      metrics,
      dispatcher,
      scheduler,
      pushDrain,
      retriggerRunner,
      coordinator,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Stops on SIGTERM/SIGINT: the first signal drains within a deadline, a second one exits at once. */
export function stopOnSignals(proc: { stop(): Promise<void> }, log: Logger, deadlineMs = 30_000): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "stopping");
    const timer = setTimeout(() => {
      log.error("shutdown deadline passed: exiting");
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    proc.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/**
 * Listens on the control channel and hands other processes' messages to `onMessage`. Subscribing is
 * retried in the background while Redis is down; the periodic scheduler covers what is missed.
 */
function controlListener(
  coordinator: Coordinator,
  origin: string,
  log: Logger,
  onMessage: (m: ControlMessage) => void,
): Component {
  let unsubscribe: (() => Promise<void>) | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const attempt = async () => {
    try {
      unsubscribe = await coordinator.subscribe(CONTROL_CHANNEL, (m) => {
        if (m.origin !== origin) onMessage(m);
      });
    } catch (err) {
      log.warn({ err }, "control channel unavailable; retrying (the scheduler covers missed messages)");
      if (!stopped) timer = setTimeout(() => void attempt(), 2000);
    }
  };
  return {
    name: "control-listener",
    start: attempt,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (unsubscribe) await unsubscribe();
    },
  };
}
