/**
 * `npm run bench`: Herald side by side with a bare undici loop, BullMQ and pg-boss, on this machine, in
 * one run. See bench/README.md for the scenarios and how to read RESULTS.md.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import IORedis from "ioredis";
import pg from "pg";
import { forkWorker } from "./proc.mjs";
import { medianOf, renderMarkdown, summarize } from "./report.mjs";
import { backlog, fanout, floor, latency, retrigger, throughput } from "./scenarios.mjs";
import { SYSTEMS } from "./systems.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const benchDir = path.resolve(here, "..");
const root = path.resolve(benchDir, "..");

/** The default run's scenarios. `retrigger` runs only when asked for: it does not fit the 15 minutes. */
const DEFAULT_SCENARIOS = ["floor", "throughput", "latency", "backlog", "fanout"];
const SCENARIOS = [...DEFAULT_SCENARIOS, "retrigger"];
/** The floor scenario's parts (not systems: PostgreSQL alone on two table layouts, the message; lib/floor.mjs). */
const FLOOR_PARTS = ["herald-tables", "minimal", "message"];
const DEFAULT_SYSTEMS = {
  floor: FLOOR_PARTS,
  throughput: ["ceiling", "bullmq", "pgboss", "herald", "herald-ordered", "herald-embedded"],
  latency: ["bullmq", "pgboss", "herald", "herald-nopush"],
  backlog: ["herald"],
  fanout: ["ceiling", "bullmq", "pgboss", "herald", "herald-embedded"],
  retrigger: ["herald"],
};
/** --quick: a smoke run of every scenario in under two minutes; the competitors only in throughput. */
const QUICK_SYSTEMS = {
  floor: FLOOR_PARTS,
  throughput: ["ceiling", "bullmq", "pgboss", "herald", "herald-ordered"],
  latency: ["herald", "herald-nopush"],
  backlog: ["herald"],
  fanout: ["herald"],
  retrigger: ["herald"],
};

const HELP = `npm run bench -- [options]      (bench/README.md explains every scenario)

  --quick                    a smoke run of every default scenario in under two minutes: 3,000 deliveries,
                             200 events/s for 10 s, backlog 1,000 vs 100,000, 3 fan-outs; the
                             competitors in throughput only
  --scenario a,b             floor, throughput, latency, backlog, fanout (memory is sampled in throughput
                             and backlog; "memory" is an alias of throughput); default: those five.
                             floor: PostgreSQL alone on Herald's tables and on a minimal job table,
                             signing a webhook, parsing an event
                             retrigger (issue 7: a 100,000-ID dry run and a 100,000-item job, 10 to 20
                             minutes) runs only when named here
  --systems a,b              only these systems, in this order: ${Object.keys(SYSTEMS).join(", ")}
  --repeat N                 run everything N times and report the median of each number (default 1)
  --n N                      throughput deliveries (default 100000; quick 3000)
  --cap-seconds S            time cap of one throughput measurement (default 45; quick 30)
  --rates a,b                latency rates, events/s (default 200,1000; quick 200)
  --latency-seconds S        seconds per rate (default 30; quick 10)
  --backlog a,b              backlog sizes (default 1000,1000000; quick 1000,100000)
  --backlog-window N         most deliveries timed per backlog drain (default 100000; quick 20000)
  --backlog-seconds S        most seconds timed per backlog drain (default 30; quick 5)
  --fanout-events N          fan-out events, each to 100 subscriptions (default 10; quick 3)
  --retrigger-ids N          re-trigger: aggregate IDs in the dry run and the job (default 100000;
                             quick 5000; at most 100000, the API's bound)
  --retrigger-batch N        re-trigger: the job's batch_size (default 1000, the API's maximum)
  --retrigger-seconds S      re-trigger: most seconds for the seeding, the dry run and the job each
                             (default 1800; quick 300)
  --throughput-subs N        unordered throughput spread over N subscriptions (default 1)
  --latency-subs N           latency events spread over N subscriptions (default 1)
  --producers N              batches of 1,000 in flight while producing (default 1)
  --cpu-prof                 run Herald under node --cpu-prof (bench/results/<run>/profiles/)
  --results-md               write bench/RESULTS.md (default for full runs of the default scenarios,
                             not for --quick, a --scenario choice or --systems)
  --no-results-md            do not write bench/RESULTS.md
  --pg-url URL               PostgreSQL on loopback (default postgres://postgres@127.0.0.1:5432/test)
  --redis-url URL            Redis on loopback (default redis://127.0.0.1:6379)
  --keep                     keep the run's schemas and Redis keys (default: dropped at the end)
  --analyze-after-fill       profiling: ANALYZE deliveries after a backlog's fill, before the drain
  --herald-pg-options "..."  profiling: extra "-c name=value" settings on Herald's PostgreSQL connections
  --herald-node-options "..." node's own flags for every Herald process (e.g. "--no-liftoff-only")
  --render FILE.json         write a finished run's Markdown again from its JSON (with --results-md:
                             bench/RESULTS.md too); runs nothing
`;

export function parseArgs(argv) {
  const o = {
    quick: false,
    scenarios: [...DEFAULT_SCENARIOS],
    systems: null,
    repeat: 1,
    producers: 1,
    cpuProf: false,
    resultsMd: null,
    keep: false,
    pgUrl: "postgres://postgres@127.0.0.1:5432/test",
    redisUrl: "redis://127.0.0.1:6379",
    heraldLogLevel: "info",
  };
  const set = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const list = () =>
      val()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    const int = () => {
      const n = Number(val().replaceAll("_", ""));
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${a} needs a positive whole number`);
      return n;
    };
    switch (a) {
      case "--help":
      case "-h":
        process.stdout.write(HELP);
        process.exit(0);
        break;
      case "--quick":
        o.quick = true;
        break;
      case "--scenario":
      case "--scenarios":
        o.scenarios = list().map((s) => (s === "memory" ? "throughput" : s));
        for (const s of o.scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
        // The floor first: later systems leave tables behind whose autovacuum would count in its CPU.
        o.scenarios = [...new Set(o.scenarios)].sort((a, b) => (b === "floor") - (a === "floor"));
        break;
      case "--systems":
        o.systems = list();
        for (const s of o.systems) if (!SYSTEMS[s]) throw new Error(`unknown system ${s}`);
        break;
      case "--repeat":
        o.repeat = int();
        break;
      case "--n":
        set.n = int();
        break;
      case "--rates":
        set.rates = list().map(Number);
        break;
      case "--latency-seconds":
        set.latencySeconds = int();
        break;
      case "--throughput-subs":
        o.throughputSubs = int();
        break;
      case "--latency-subs":
        o.latencySubs = int();
        break;
      case "--backlog":
        set.backlog = list().map((x) => Number(x.replaceAll("_", "")));
        break;
      case "--backlog-window":
        set.backlogWindow = int();
        break;
      case "--backlog-seconds":
        set.backlogSeconds = int();
        break;
      case "--fanout-events":
        set.fanoutEvents = int();
        break;
      case "--cap-seconds":
        set.capSeconds = int();
        break;
      case "--retrigger-ids":
        set.retriggerIds = int();
        if (set.retriggerIds > 100_000) throw new Error("--retrigger-ids: the API takes at most 100000 IDs");
        break;
      case "--retrigger-batch":
        set.retriggerBatch = int();
        if (set.retriggerBatch > 1000) throw new Error("--retrigger-batch: batch_size is at most 1000");
        break;
      case "--retrigger-seconds":
        set.retriggerSeconds = int();
        break;
      case "--producers":
        o.producers = int();
        break;
      case "--cpu-prof":
        o.cpuProf = true;
        break;
      case "--results-md":
        o.resultsMd = true;
        break;
      case "--no-results-md":
        o.resultsMd = false;
        break;
      case "--keep":
        o.keep = true;
        break;
      case "--pg-url":
        o.pgUrl = val();
        break;
      case "--redis-url":
        o.redisUrl = val();
        break;
      case "--analyze-after-fill":
        o.analyzeAfterFill = true;
        break;
      case "--herald-pg-options":
        o.heraldPgOptions = val();
        break;
      case "--herald-node-options":
        o.heraldNodeOptions = val().split(/\s+/).filter(Boolean);
        break;
      case "--herald-log-level":
        o.heraldLogLevel = val();
        break;
      default:
        throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  const defaults = o.quick
    ? {
        n: 3_000,
        rates: [200],
        latencySeconds: 10,
        backlog: [1000, 100_000],
        backlogWindow: 20_000,
        backlogSeconds: 5,
        fanoutEvents: 3,
        capSeconds: 30,
        retriggerIds: 5_000,
        retriggerBatch: 1000,
        retriggerSeconds: 300,
      }
    : {
        n: 100_000,
        rates: [200, 1000],
        latencySeconds: 30,
        backlog: [1000, 1_000_000],
        backlogWindow: 100_000,
        backlogSeconds: 30,
        fanoutEvents: 10,
        capSeconds: 45,
        retriggerIds: 100_000,
        retriggerBatch: 1000,
        retriggerSeconds: 1800,
      };
  Object.assign(o, defaults, set);
  // RESULTS.md is the default run's page: a run of other scenarios or systems does not replace it unasked.
  const defaultScenarios =
    o.scenarios.length === DEFAULT_SCENARIOS.length &&
    DEFAULT_SCENARIOS.every((x) => o.scenarios.includes(x));
  if (o.resultsMd === null) o.resultsMd = !o.quick && defaultScenarios && o.systems === null;
  for (const u of [o.pgUrl, o.redisUrl]) {
    const host = new URL(u).hostname;
    if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
      throw new Error(`${u}: the benchmark only talks to services on loopback`);
    }
  }
  return o;
}

async function machineInfo(pgPool, redis) {
  const cpus = os.cpus();
  const pgVersion = (await pgPool.query("SHOW server_version")).rows[0].server_version;
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "?";
  let commit = "?";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "bin"], { cwd: root })
      .toString()
      .trim();
    if (dirty) commit += " (src/ with uncommitted changes)";
  } catch {}
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? "?",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: pgVersion,
    redis: redisVersion,
    heraldCommit: commit,
  };
}

/**
 * Opens what every run needs: the loopback PostgreSQL and Redis, the receiver process, a run folder under
 * bench/results/, and the context the scenarios take. Exits with a clear message when a service is down.
 */
export async function openRun(opts, argv, started = Date.now()) {
  const runId = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\..*/, "")
    .replace("T", "_")
    .toLowerCase();
  const runDir = path.join(benchDir, "results", runId);
  const logDir = path.join(runDir, "logs");
  const profileDir = path.join(runDir, "profiles");
  mkdirSync(logDir, { recursive: true });
  if (opts.cpuProf) mkdirSync(profileDir, { recursive: true });
  const log = (msg) =>
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

  const pgPool = new pg.Pool({ connectionString: opts.pgUrl, max: 4 });
  const redis = new IORedis(opts.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await pgPool.query("SELECT 1");
    await redis.connect();
    await redis.ping();
  } catch (err) {
    process.stderr.write(
      `bench: PostgreSQL (${opts.pgUrl}) and Redis (${opts.redisUrl}) must be running on loopback: ${err.message}\n`,
    );
    process.exit(2);
  }
  const meta = {
    date: new Date().toISOString(),
    command: `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`,
    machine: await machineInfo(pgPool, redis),
    options: opts,
  };
  log(`run ${runId}: ${meta.command}`);
  log(
    `machine: ${meta.machine.cores} cores, ${meta.machine.memoryGiB} GiB, node ${meta.machine.node}, PostgreSQL ${meta.machine.postgres}, Redis ${meta.machine.redis}`,
  );

  const receiver = forkWorker(path.join(here, "receiver.mjs"), {
    name: "receiver",
    logFile: path.join(logDir, "receiver.log"),
  });
  const { port } = await receiver.waitEvent((m) => m.evt === "ready", 30_000);
  let seq = 0;
  const ctx = {
    opts,
    log,
    receiver,
    receiverOrigin: `http://127.0.0.1:${port}`,
    pg: pgPool,
    pgUrl: opts.pgUrl,
    redisUrl: opts.redisUrl,
    schemaPrefix: `hb_${runId}_`,
    redisPrefix: `hb${runId}`,
    adminToken: `bench-admin-token-${runId}`,
    schemas: new Set(),
    runDir,
    profileDir,
    seq: () => ++seq,
    logFile: (name) => path.join(logDir, `${name}.log`),
    async pgQueryIn(schema, sql, params) {
      const c = await pgPool.connect();
      try {
        await c.query(`SET search_path TO ${schema}`);
        return await c.query(sql, params);
      } finally {
        await c.query("RESET search_path").catch(() => {});
        c.release();
      }
    },
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await receiver.call("exit", {}, 2000).catch(() => {});
    if (!opts.keep) await cleanup(ctx, pgPool, redis, log).catch((err) => log(`cleanup: ${err.message}`));
    await pgPool.end();
    redis.disconnect();
  };
  let interrupted = false;
  const onSignal = (signal) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping, cleaning up`);
    void close().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return { runId, ctx, meta, log, close };
}

/** `--render <run>.json`: writes that run's Markdown again from its JSON (after a change to the report). */
function render(argv) {
  const file = argv[argv.indexOf("--render") + 1];
  if (!file) throw new Error("--render needs a results JSON file");
  const json = JSON.parse(readFileSync(file, "utf8"));
  const runId = path.basename(file, ".json");
  json.summary = summarize(json.median);
  const md = resultsMarkdown(
    json.meta,
    renderMarkdown({ agg: json.median, meta: json.meta, summary: json.summary }),
    runId,
  );
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(path.join(benchDir, "results", `${runId}.md`), md);
  if (argv.includes("--results-md")) writeFileSync(path.join(benchDir, "RESULTS.md"), md);
  process.stdout.write(md);
}

export async function main(argv) {
  if (argv.includes("--render")) return render(argv);
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(2);
  }
  const started = Date.now();
  const { runId, ctx, meta, log, close } = await openRun(opts, argv, started);

  // Other work on this machine skews every number: sample the load average during the run.
  const loadSamples = [];
  const loadTimer = setInterval(() => loadSamples.push(os.loadavg()[0]), 5000);
  loadTimer.unref();
  meta.loadBefore = os.loadavg().map((x) => Math.round(x * 100) / 100);
  meta.othersBefore = await busyProcesses();
  const runs = [];
  // --systems picks from every system that fits the scenario (a backlog needs a consumer that starts
  // after the fill: not the ceiling, not the one-process embedded Herald); in the given order.
  // A re-trigger job needs Herald with one subscription (not the 1,000 of the ordered variants).
  const fits = (scenario, s) =>
    scenario === "retrigger"
      ? SYSTEMS[s].kind === "herald" && !SYSTEMS[s].subs
      : scenario !== "backlog" || (s !== "ceiling" && s !== "herald-embedded");
  const systemsFor = (scenario) =>
    scenario === "floor"
      ? FLOOR_PARTS
      : opts.systems
        ? opts.systems.filter((s) => fits(scenario, s))
        : (opts.quick ? QUICK_SYSTEMS : DEFAULT_SYSTEMS)[scenario];
  const attempt = async (what, fn) => {
    const t = Date.now();
    log(`${what} …`);
    try {
      const r = await fn();
      log(`${what}: ${brief(r)} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
      return r;
    } catch (err) {
      log(`${what}: FAILED ${err.stack ?? err}`);
      return { error: String(err.message ?? err).slice(0, 200) };
    }
  };
  try {
    for (let rep = 0; rep < opts.repeat; rep++) {
      if (opts.repeat > 1) log(`repeat ${rep + 1} of ${opts.repeat}`);
      const run = {};
      for (const scenario of opts.scenarios) {
        run[scenario] = {};
        for (const key of systemsFor(scenario)) {
          if (scenario === "floor") {
            run[scenario][key] = await attempt(`floor ${key}`, () => floor(ctx, key));
          } else if (scenario === "throughput") {
            run[scenario][key] = await attempt(`throughput ${key}`, () => throughput(ctx, key));
          } else if (scenario === "latency") {
            for (const rate of opts.rates) {
              run[scenario][`${key}@${rate}`] = await attempt(`latency ${key} @ ${rate}/s`, () =>
                latency(ctx, key, rate),
              );
            }
          } else if (scenario === "backlog") {
            for (const size of opts.backlog) {
              run[scenario][`${key}@${size}`] = await attempt(`backlog ${key} ${size}`, () =>
                backlog(ctx, key, size),
              );
            }
          } else if (scenario === "fanout") {
            run[scenario][key] = await attempt(`fan-out ${key}`, () => fanout(ctx, key));
          } else if (scenario === "retrigger") {
            run[scenario][key] = await attempt(`re-trigger ${key} ${opts.retriggerIds}`, () =>
              retrigger(ctx, key),
            );
          }
        }
      }
      runs.push(run);
    }
  } finally {
    await close();
  }

  clearInterval(loadTimer);
  meta.loadDuring = loadSamples.length
    ? {
        mean: Math.round((loadSamples.reduce((a, b) => a + b, 0) / loadSamples.length) * 100) / 100,
        max: Math.round(Math.max(...loadSamples) * 100) / 100,
      }
    : null;
  const agg = {};
  for (const scenario of opts.scenarios) {
    agg[scenario] = {};
    for (const key of Object.keys(runs[0][scenario] ?? {})) {
      agg[scenario][key] = medianOf(runs.map((r) => r[scenario]?.[key]));
    }
  }
  const summary = summarize(agg);
  meta.durationSeconds = Math.round((Date.now() - started) / 1000);
  const tables = renderMarkdown({ agg, meta, summary });
  const json = { meta, summary, median: agg, runs };
  const jsonPath = path.join(benchDir, "results", `${runId}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  const md = resultsMarkdown(meta, tables, runId);
  writeFileSync(path.join(benchDir, "results", `${runId}.md`), md);
  if (opts.resultsMd) writeFileSync(path.join(benchDir, "RESULTS.md"), md);
  process.stdout.write(`\n${tables}\n`);
  log(
    `done in ${meta.durationSeconds} s: ${path.relative(root, jsonPath)}${opts.resultsMd ? ", bench/RESULTS.md" : ""}`,
  );
}

function resultsMarkdown(meta, tables, runId) {
  const m = meta.machine;
  const reps = meta.options.repeat > 1 ? `, median of ${meta.options.repeat} runs` : ", one run";
  return `# Benchmark results

Written by \`npm run bench\` (see [README.md](README.md) for what each scenario measures and how to read
this page). Every number below comes from the one run described here; nothing is edited by hand.

- **Command:** \`${meta.command}\`${reps}
- **Date:** ${meta.date} (run \`${runId}\`, ${Math.round(meta.durationSeconds / 60)} min)
- **Machine:** ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB memory, ${m.os}
- **Versions:** Node ${m.node}, PostgreSQL ${m.postgres}, Redis ${m.redis}, Herald ${m.heraldCommit}
- **Machine load:** load average ${meta.loadBefore?.[0]} when the run started${
    meta.othersBefore?.length
      ? ` (other processes busy then: ${meta.othersBefore.map((p) => `${p.comm} ${p.cpuPercent} %`).join(", ")})`
      : " (no other busy process)"
  }; ${meta.loadDuring ? `mean ${meta.loadDuring.mean}, max ${meta.loadDuring.max} during the run` : "not sampled during the run"}
- **Everything on this one machine:** PostgreSQL, Redis, the receiver, the load driver and the system under test
  share the ${m.cores} cores; 64 POSTs in flight for every system.

${tables}`;
}

/** Processes using at least 10 % of a core over one second (before the run starts: none of them are ours). */
async function busyProcesses() {
  const ticks = () => {
    const m = new Map();
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        const comm = stat.slice(stat.indexOf("(") + 1, close);
        const f = stat.slice(close + 2).split(" ");
        m.set(pid, { comm, t: Number(f[11]) + Number(f[12]) });
      } catch {}
    }
    return m;
  };
  try {
    const a = ticks();
    await new Promise((r) => setTimeout(r, 1000));
    const b = ticks();
    const out = [];
    for (const [pid, { comm, t }] of b) {
      const before = a.get(pid);
      const pct = before ? t - before.t : 0; // 100 ticks per second
      if (pct >= 10 && Number(pid) !== process.pid) out.push({ pid: Number(pid), comm, cpuPercent: pct });
    }
    return out.sort((x, y) => y.cpuPercent - x.cpuPercent).slice(0, 8);
  } catch {
    return [];
  }
}

function brief(r) {
  if (!r) return "no result";
  if (r.error) return `error: ${r.error}`;
  if (r.dryRun)
    return `dry run ${r.dryRun.seconds} s (${r.dryRun.responseMiB} MiB); job ${r.job.status} in ${r.job.seconds} s, ${r.job.itemsPerSecond} items/s, received ${r.job.received} (${r.job.duplicates} duplicates) rss ${JSON.stringify(r.peakRssMiB)}`;
  if (r.p99 !== undefined)
    return `p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms (${r.delivered}/${r.accepted})`;
  if (r.lastP50 !== undefined) return `all 100 in ${r.lastP50} ms (p50)`;
  if (r.sign_us_per_delivery !== undefined)
    return `a webhook signed in ${r.sign_us_per_delivery} µs of CPU, an event parsed in ${r.parse_us_per_event} µs`;
  if (r.postgres_cpu_us_per_row)
    return `${r.tables}: PostgreSQL ${r.postgres_cpu_us_per_row.insert} + ${r.postgres_cpu_us_per_row.claim_and_record} µs of CPU per row (${r.n} rows)`;
  if (r.pending !== undefined) return `${r.perSecond}/s draining (fill ${r.insertSeconds} s)`;
  return `${r.perSecond}/s (${r.delivered} in ${r.seconds} s) rss ${JSON.stringify(r.peakRssMiB)}`;
}

async function cleanup(ctx, pgPool, redis, log) {
  for (const schema of ctx.schemas) {
    await pgPool
      .query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      .catch((err) => log(`drop ${schema}: ${err.message}`));
  }
  let cursor = "0";
  let removed = 0;
  for (let i = 0; i < 100_000; i++) {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${ctx.redisPrefix}*`, "COUNT", 1000);
    if (keys.length) removed += await redis.unlink(...keys);
    cursor = next;
    if (cursor === "0") break;
  }
  log(`cleaned up: ${ctx.schemas.size} schemas, ${removed} Redis keys`);
}
