/**
 * The systems under test, each behind one small interface the scenarios drive:
 *   start(ctx, setup) → { procs, produceBatch(items), produceOne(item), startConsumers(), stop() }
 * An item is `{ sub, k, n }`: which subscription (receiver path /s/<sub>), the benchmark key, and its
 * sequence number within that subscription. `setup.fanout` = 100 makes one item go to 100 subscriptions.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import IORedis from "ioredis";
import PgBoss from "pg-boss";
import { Pool } from "undici";
import { forkWorker, freePort, spawnProcess, stopChild, waitHttpReady, waitOutput } from "./proc.mjs";
import { BENCH_ENCRYPTION_KEY, EVENT_TYPE, payload } from "./util.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const heraldBin = path.join(root, "bin", "herald.js");

export const CONCURRENCY = 64;
const FANOUT_TYPE = "bench.fanout";

/** Everything the benchmark can run, by key. `herald` marks Herald variants and their settings. */
export const SYSTEMS = {
  ceiling: { label: "ceiling: bare undici loop", kind: "ceiling" },
  bullmq: { label: "BullMQ + undici", kind: "bullmq" },
  pgboss: { label: "pg-boss + undici", kind: "pgboss" },
  herald: { label: "Herald unordered", kind: "herald", store: "pg", ordering: "unordered", push: true },
  "herald-nopush": {
    label: "Herald unordered, push drain off",
    kind: "herald",
    store: "pg",
    ordering: "unordered",
    push: false,
  },
  "herald-ordered": {
    label: "Herald ordered, 1,000 subscriptions",
    kind: "herald",
    store: "pg",
    ordering: "ordered",
    push: true,
    subs: 1000,
  },
  "herald-ordered-nopush": {
    label: "Herald ordered, 1,000 subscriptions, push drain off",
    kind: "herald",
    store: "pg",
    ordering: "ordered",
    push: false,
    subs: 1000,
  },
  "herald-embedded": {
    label: "Herald embedded store",
    kind: "herald",
    store: "embedded",
    ordering: "unordered",
    push: true,
  },
};

/** Builds the event/job items for `count` deliveries spread round-robin over `subs` subscriptions. */
export function items(prefix, from, count, subs) {
  const out = new Array(count);
  for (let j = 0; j < count; j++) {
    const i = from + j;
    out[j] = { sub: i % subs, k: `${prefix}${i}`, n: Math.floor(i / subs) };
  }
  return out;
}

export async function startSystem(ctx, key, setup = {}) {
  const sys = SYSTEMS[key];
  if (!sys) throw new Error(`unknown system ${key}`);
  const tag = `${key.replace(/[^a-z0-9]/g, "")}${ctx.seq()}`;
  const starters = { ceiling: startCeiling, bullmq: startBullmq, pgboss: startPgboss, herald: startHerald };
  const handle = await starters[sys.kind](ctx, tag, setup, sys);
  handle.key = key;
  // Hooks for bench/profile.mjs: watch the system while it runs, look at it before it stops.
  await ctx.onStart?.(handle);
  const stop = handle.stop;
  handle.stop = async () => {
    await ctx.onStop?.(handle);
    await stop();
  };
  return handle;
}

/** The competitors' job payload for one item (the message they sign and POST). */
function job(item, t) {
  return { path: `/s/${item.sub}`, type: EVENT_TYPE, data: payload(item.k, item.n, t) };
}

function fanoutJobs(item, t, fanout) {
  return Array.from({ length: fanout }, (_, s) => ({
    path: `/s/${s}`,
    type: FANOUT_TYPE,
    data: payload(item.k, item.n, t),
  }));
}

// ---------------------------------------------------------------- ceiling

async function startCeiling(ctx, tag, setup) {
  const w = forkWorker(path.join(here, "ceiling.mjs"), {
    name: `ceiling-${tag}`,
    env: { BENCH_RECEIVER_ORIGIN: ctx.receiverOrigin, BENCH_CONCURRENCY: String(CONCURRENCY) },
    logFile: ctx.logFile(`ceiling-${tag}`),
  });
  await w.waitEvent((m) => m.evt === "ready", 30_000);
  const fanout = setup.fanout ?? 0;
  return {
    procs: () => [{ role: "ceiling", pid: w.pid }],
    /** The ceiling drives itself: `n` POSTs as fast as 64 connections allow. */
    runAll: (n, subs, prefix) => w.call("run", { n, subs, prefix }, 600_000),
    produceBatch: (batch) => w.send("post", { events: batch.map((it) => job(it, Date.now())) }),
    produceOne: (it) =>
      w.send("post", { events: fanout ? fanoutJobs(it, Date.now(), fanout) : [job(it, Date.now())] }),
    startConsumers: async () => {},
    stop: () => w.stop(),
  };
}

// ---------------------------------------------------------------- BullMQ

async function startBullmq(ctx, tag, setup) {
  const prefix = `${ctx.redisPrefix}${tag}`;
  const queueName = "deliveries";
  const connection = new IORedis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 8,
      backoff: { type: "exponential", delay: 5000 },
      removeOnComplete: true,
      removeOnFail: false,
    },
  });
  await queue.waitUntilReady();
  let worker = null;
  const startWorker = async () => {
    worker = forkWorker(path.join(here, "bullmq-worker.mjs"), {
      name: `bullmq-${tag}`,
      env: {
        BENCH_REDIS_URL: ctx.redisUrl,
        BENCH_QUEUE: queueName,
        BENCH_PREFIX: prefix,
        BENCH_RECEIVER_ORIGIN: ctx.receiverOrigin,
        BENCH_CONCURRENCY: String(CONCURRENCY),
      },
      logFile: ctx.logFile(`bullmq-${tag}`),
    });
    await worker.waitEvent((m) => m.evt === "ready", 30_000);
  };
  if (setup.consumers !== false) await startWorker();
  const fanout = setup.fanout ?? 0;
  return {
    procs: () => (worker ? [{ role: "bullmq worker", pid: worker.pid }] : []),
    produceBatch: (batch) =>
      queue.addBulk(batch.map((it) => ({ name: "deliver", data: job(it, Date.now()) }))),
    produceOne: (it) =>
      fanout
        ? queue.addBulk(fanoutJobs(it, Date.now(), fanout).map((data) => ({ name: "deliver", data })))
        : queue.add("deliver", job(it, Date.now())),
    startConsumers: startWorker,
    async stop() {
      if (worker) await worker.stop();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      await connection.quit();
    },
  };
}

// ---------------------------------------------------------------- pg-boss

/** The pg-boss worker's mode and its settings, passed through from the benchmark's own environment. */
function pgbossWorkerEnv() {
  const env = {};
  for (const k of [
    "BENCH_PGBOSS_MODE",
    "BENCH_PGBOSS_WORKERS",
    "BENCH_PGBOSS_BATCH",
    "BENCH_PGBOSS_POLL_S",
    "BENCH_POLL_MS",
  ]) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  // pg-boss's own work() consumer with large batches measured fastest (bench/README.md, "Competitors").
  env.BENCH_PGBOSS_MODE ??= "work";
  return env;
}

async function startPgboss(ctx, tag, setup) {
  const schema = `${ctx.schemaPrefix}${tag}`;
  const queueName = "deliveries";
  // The producer's instance neither supervises nor schedules: the worker process does its maintenance.
  const boss = new PgBoss({
    connectionString: ctx.pgUrl,
    schema,
    supervise: false,
    schedule: false,
    max: 16,
  });
  boss.on("error", (err) => ctx.log(`pg-boss producer error: ${err.message}`));
  await boss.start();
  await boss.createQueue(queueName, { name: queueName, retryLimit: 7, retryDelay: 5, retryBackoff: true });
  ctx.schemas.add(schema);
  let worker = null;
  const startWorker = async () => {
    worker = forkWorker(path.join(here, "pgboss-worker.mjs"), {
      name: `pgboss-${tag}`,
      env: {
        BENCH_DATABASE_URL: ctx.pgUrl,
        BENCH_SCHEMA: schema,
        BENCH_QUEUE: queueName,
        BENCH_RECEIVER_ORIGIN: ctx.receiverOrigin,
        BENCH_CONCURRENCY: String(CONCURRENCY),
        ...pgbossWorkerEnv(),
      },
      logFile: ctx.logFile(`pgboss-${tag}`),
    });
    await worker.waitEvent((m) => m.evt === "ready", 60_000);
  };
  if (setup.consumers !== false) await startWorker();
  // Planner statistics for pg-boss's job table as autovacuum would keep them (this machine's PostgreSQL runs
  // with autovacuum off): analyzed every two seconds while the system runs, as Herald's own statistics
  // keeper does for its tables.
  const analyzer = setInterval(() => {
    ctx.pg.query(`ANALYZE ${schema}.job`).catch(() => {});
  }, 2000);
  const fanout = setup.fanout ?? 0;
  return {
    procs: () => (worker ? [{ role: "pg-boss worker", pid: worker.pid }] : []),
    produceBatch: (batch) => boss.insert(batch.map((it) => ({ name: queueName, data: job(it, Date.now()) }))),
    produceOne: (it) =>
      fanout
        ? boss.insert(fanoutJobs(it, Date.now(), fanout).map((data) => ({ name: queueName, data })))
        : boss.send(queueName, job(it, Date.now())),
    startConsumers: startWorker,
    async stop() {
      clearInterval(analyzer);
      if (worker) await worker.stop();
      await boss.stop({ graceful: false, wait: true, timeout: 5000 }).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------- Herald

function heraldEnv(ctx, tag, sys, port) {
  const env = {
    HERALD_ADMIN_TOKEN: ctx.adminToken,
    HERALD_ALLOW_PRIVATE_TARGETS: "true",
    HERALD_HOST: "127.0.0.1",
    HERALD_PORT: String(port),
    HERALD_PUSH_DRAIN: sys.push ? "true" : "false",
    DISPATCHER_MAX_CONCURRENT_POSTS: String(CONCURRENCY),
    // The backlog scenario queues up to 1,000,000 deliveries on one subscription.
    DISPATCHER_MAX_PENDING_HARD_CAP: "10000000",
    HERALD_LOG_LEVEL: ctx.opts.heraldLogLevel,
    // Never inherit the developer's own Herald settings.
    DATABASE_URL: "",
    REDIS_URL: "",
    HERALD_DATA_DIR: "",
  };
  if (sys.store === "pg") {
    const schema = `${ctx.schemaPrefix}${tag}`;
    // --herald-pg-options adds session settings (profiling: auto_explain) to Herald's connections.
    const extra = ctx.opts.heraldPgOptions ? ` ${ctx.opts.heraldPgOptions}` : "";
    env.DATABASE_URL = `${ctx.pgUrl}?options=${encodeURIComponent(`-c search_path=${schema}${extra}`)}`;
    env.REDIS_URL = ctx.redisUrl;
    env.HERALD_ENCRYPTION_KEY = BENCH_ENCRYPTION_KEY;
    env.HERALD_REDIS_PREFIX = `${ctx.redisPrefix}${tag}:`;
    return { env, schema };
  }
  return { env, schema: null };
}

async function startHerald(ctx, tag, setup, sys) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const { env, schema } = heraldEnv(ctx, tag, sys, port);
  const nodeArgs = (role) => [
    // --herald-node-options: node's flags, before the profiler's.
    ...(ctx.opts.heraldNodeOptions ?? []),
    // One folder per process: Node writes one profile per thread (tsx's loader runs in a second one).
    ...(ctx.opts.cpuProf
      ? ["--cpu-prof", `--cpu-prof-dir=${path.join(ctx.profileDir, `${tag}-${role}`)}`]
      : []),
  ];
  const run = (role, args) =>
    spawnProcess(process.execPath, [...nodeArgs(role), heraldBin, ...args], {
      name: `herald-${role}-${tag}`,
      env,
      cwd: root,
      logFile: ctx.logFile(`herald-${tag}`),
    });
  const procs = [];
  let dataDir = null;
  let api;
  let dispatcher = null;
  const startDispatcher = async () => {
    // Without --no-migrate the dispatcher logs "schema up to date" just before its loops start.
    dispatcher = run("dispatcher", ["dispatcher"]);
    procs.push({ role: "herald dispatcher", pid: dispatcher.pid, child: dispatcher });
    await waitOutput(dispatcher, /schema up to date|migrations applied/, 60_000);
  };
  if (sys.store === "pg") {
    await ctx.pg.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    ctx.schemas.add(schema);
    // Both roles apply the schema at start (a second process waits on the migration lock and finds it
    // applied), so they can start side by side.
    api = run("api", ["api"]);
    procs.push({ role: "herald api", pid: api.pid, child: api });
    await Promise.all([
      waitHttpReady(`${origin}/readyz`, { timeoutMs: 60_000, child: api }),
      setup.consumers !== false ? startDispatcher() : null,
    ]);
  } else {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "herald-bench-"));
    env.HERALD_DATA_DIR = dataDir;
    api = run("start", ["start"]);
    procs.push({ role: "herald (one process)", pid: api.pid, child: api });
    await waitHttpReady(`${origin}/readyz`, { timeoutMs: 60_000, child: api });
  }

  const client = new Pool(origin, { connections: CONCURRENCY, keepAliveTimeout: 60_000 });
  /** One API request as the admin (body: an object, or JSON already serialized); the status and raw text. */
  const request = async (method, p, body, timeoutMs = 120_000) => {
    const res = await client.request({
      path: p,
      method,
      headers: { authorization: `Bearer ${ctx.adminToken}`, "content-type": "application/json" },
      body: body === undefined || typeof body === "string" ? body : JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    return { status: res.statusCode, text: await res.body.text() };
  };
  const call = async (method, p, body, timeoutMs) => {
    const { status, text } = await request(method, p, body, timeoutMs);
    if (status >= 300) throw new Error(`${method} ${p}: HTTP ${status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };

  // Subscriptions: one per receiver path; fan-out puts them all on one tenant and event type.
  const fanout = setup.fanout ?? 0;
  const subs = fanout || setup.subs || sys.subs || 1;
  const tenantOf = (sub) => (fanout ? "fan" : `t${sub}`);
  const ceiling = Math.min(10_000_000, Math.max(10_000, (setup.pending ?? 0) + 10_000));
  let next = 0;
  const subscriptionIds = [];
  const creator = async () => {
    for (;;) {
      const s = next++;
      if (s >= subs) return;
      const created = await call("POST", "/v1/subscriptions", {
        tenant_id: tenantOf(s),
        url: `${ctx.receiverOrigin}/s/${s}`,
        event_types: [fanout ? FANOUT_TYPE : EVENT_TYPE],
        ordering: sys.ordering,
        pending_ceiling: ceiling,
        ...(sys.ordering === "unordered" ? { max_in_flight: 1000 } : {}),
      });
      subscriptionIds[s] = created.subscription_id;
    }
  };
  const createSubscriptions = async () => {
    await Promise.all(Array.from({ length: 8 }, creator));
    return subscriptionIds;
  };
  // setup.deferSubscriptions: the scenario creates them later (createSubscriptions), e.g. after seeding
  // events that must not be delivered.
  if (!setup.deferSubscriptions) await createSubscriptions();

  const event = (it, t) => ({
    tenant_id: tenantOf(it.sub),
    event_type: fanout ? FANOUT_TYPE : EVENT_TYPE,
    payload: payload(it.k, it.n, t),
  });
  return {
    origin,
    schema,
    procs: () => procs.filter((p) => p.child.exitCode === null).map(({ role, pid }) => ({ role, pid })),
    produceBatch: (batch) =>
      call("POST", "/v1/events/batch", { events: batch.map((it) => event(it, Date.now())) }),
    produceOne: (it) => call("POST", "/v1/events", event(it, Date.now())),
    /** The admin's API client: `call` answers parsed JSON (throws on non-2xx), `request` the raw text. */
    call,
    request,
    tenantOf,
    createSubscriptions,
    startConsumers: async () => {
      if (!dispatcher && sys.store === "pg") await startDispatcher();
    },
    /** Runs SQL in this Herald's schema (profiling). */
    query: (sql, params) => ctx.pgQueryIn(schema, sql, params),
    async stop() {
      await client.close();
      for (const p of [...procs].reverse()) await stopChild(p.child, 15_000);
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
