#!/usr/bin/env node
/**
 * Profiles Herald under one benchmark load and writes bench/results/<run>/profile.md:
 *   - CPU: every Herald process runs under `node --cpu-prof`; the top functions by self time, and the
 *     share of each area (Herald's src/ folders, each dependency, Node internals, GC);
 *   - PostgreSQL: what Herald's own connections were doing, sampled from pg_stat_activity every 50 ms
 *     (state, wait event, statement), and the table statistics of its schema (updates, HOT updates,
 *     dead tuples) per delivered webhook;
 *   - EXPLAIN (ANALYZE, BUFFERS) of the accept, claim and record statements (bench/lib/explain.ts runs
 *     Herald's own code) with N deliveries pending (`--explain 1000,1000000`).
 *
 *   node bench/profile.mjs --load throughput --system herald --n 20000
 *   node bench/profile.mjs --load latency --system herald --rate 200 --seconds 20 [--latency-subs 100]
 *   node bench/profile.mjs --load backlog --size 100000 [--backlog-seconds 20]
 *   node bench/profile.mjs --load retrigger --retrigger-ids 20000     (the job only, not the seeding)
 *   node bench/profile.mjs --load none --explain 1000,1000000 [--system herald-ordered]
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cpuSnapshot, ticksBetween, ticksPerSecond } from "./lib/proc.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

// Same bootstrap as run.mjs: the benchmark's own dependencies first.
const installed = path.join(here, "node_modules", ".package-lock.json");
if (
  !existsSync(installed) ||
  statSync(installed).mtimeMs < statSync(path.join(here, "package-lock.json")).mtimeMs
) {
  const r = spawnSync("npm", ["ci", "--prefix", here, "--no-audit", "--no-fund"], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { openRun, parseArgs } = await import("./lib/main.mjs");
const { backlog, ingest, latency, retrigger, throughput, fanout } = await import("./lib/scenarios.mjs");
const { SYSTEMS, startSystem } = await import("./lib/systems.mjs");

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);
const prof = { load: "throughput", system: "herald", rate: 200, explain: [], cpuProf: true };
const rest = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--load") prof.load = argv[++i];
  else if (a === "--system") prof.system = argv[++i];
  else if (a === "--rate") prof.rate = Number(argv[++i]);
  else if (a === "--seconds") rest.push("--latency-seconds", argv[++i]);
  else if (a === "--size") prof.size = Number(argv[++i].replaceAll("_", ""));
  else if (a === "--explain") prof.explain = argv[++i].split(",").map((x) => Number(x.replaceAll("_", "")));
  else if (a === "--no-cpu-prof") prof.cpuProf = false;
  else rest.push(a);
}
if (!["throughput", "latency", "backlog", "fanout", "retrigger", "none"].includes(prof.load))
  throw new Error(`unknown --load ${prof.load}`);
if (!SYSTEMS[prof.system]?.store) throw new Error(`--system must be a Herald variant, not ${prof.system}`);
const opts = parseArgs(["--no-results-md", ...(rest.includes("--n") ? [] : ["--n", "20000"]), ...rest]);
opts.cpuProf = prof.cpuProf && prof.load !== "none";
if (!rest.includes("--latency-seconds")) opts.latencySeconds = 20;

const { ctx, log, close, runDir } = await openRunWithDir();
async function openRunWithDir() {
  const r = await openRun(opts, ["(profile)", ...argv]);
  return { ...r, runDir: r.ctx.runDir };
}

// ---------------------------------------------------------------- PostgreSQL sampling

/** Local TCP ports of the sockets a process holds (its PostgreSQL connections among them). */
function tcpPortsOf(pid) {
  const inodes = new Set();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {}
    }
  } catch {}
  const ports = new Set();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {}
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9])) ports.add(Number.parseInt(f[1].split(":")[1], 16));
    }
  }
  return ports;
}

function pgSampler(procs) {
  const counts = new Map();
  let samples = 0;
  let portRole = new Map();
  let stopped = false;
  const refreshPorts = () => {
    const m = new Map();
    for (const p of procs) for (const port of tcpPortsOf(p.pid)) m.set(port, p.role);
    portRole = m;
  };
  refreshPorts();
  const portTimer = setInterval(refreshPorts, 1000);
  const loop = (async () => {
    while (!stopped) {
      const ports = [...portRole.keys()];
      if (ports.length) {
        const r = await ctx.pg
          .query(
            `SELECT client_port, state, coalesce(wait_event_type, '') AS wt, coalesce(wait_event, '') AS we,
                    left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS q
             FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND state <> 'idle'`,
            [ports],
          )
          .catch(() => ({ rows: [] }));
        samples += 1;
        for (const row of r.rows) {
          const key = [portRole.get(row.client_port) ?? "?", row.state, `${row.wt}:${row.we}`, row.q].join(
            " | ",
          );
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  return {
    async stop() {
      stopped = true;
      clearInterval(portTimer);
      await loop;
      return { samples, counts: [...counts].sort((a, b) => b[1] - a[1]) };
    },
  };
}

async function tableStats(schema) {
  // Backends flush their statistics about once a second.
  await new Promise((r) => setTimeout(r, 1500));
  const t = await ctx.pg.query(
    `SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_dead_tup, n_live_tup, seq_scan, idx_scan
     FROM pg_stat_user_tables WHERE schemaname = $1 AND (n_tup_ins + n_tup_upd) > 0 ORDER BY relname`,
    [schema],
  );
  const sizes = await ctx.pg.query(
    `SELECT c.relname, c.relkind, pg_relation_size(c.oid) AS bytes FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'i')
     ORDER BY pg_relation_size(c.oid) DESC LIMIT 20`,
    [schema],
  );
  return { tables: t.rows, sizes: sizes.rows };
}

// ---------------------------------------------------------------- CPU accounting (whole machine)

/** Where the machine's CPU went between two snapshots, grouped: Herald's roles, PostgreSQL, Redis, … */
function cpuBetween(a, b, roles) {
  const groups = new Map();
  const add = (g, t) => groups.set(g, (groups.get(g) ?? 0) + t);
  for (const [pid, { comm }] of b.procs) {
    const t = ticksBetween(a, b, pid);
    if (t <= 0) continue;
    const role = roles.get(pid);
    if (role) add(role, t);
    else if (pid === process.pid) add("load driver", t);
    else if (comm === "postgres") add("PostgreSQL (all backends)", t);
    else if (comm.startsWith("redis")) add("Redis", t);
    else add(`other: ${comm}`, t);
  }
  const seconds = (b.at - a.at) / 1000;
  const hz = ticksPerSecond();
  return {
    seconds: Math.round(seconds * 10) / 10,
    machineBusyPercent: Math.round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100),
    groups: [...groups]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 12)
      .map(([group, ticks]) => ({
        group,
        coreSeconds: ticks / hz,
        ofOneCore: Math.round((ticks / hz / seconds) * 100),
      })),
  };
}

// ---------------------------------------------------------------- CPU profiles

function summarizeProfile(file) {
  const prof = JSON.parse(readFileSync(file, "utf8"));
  const total = prof.endTime - prof.startTime; // µs
  const per = total / Math.max(1, prof.samples.length);
  const byFn = new Map();
  const byArea = new Map();
  let busy = 0;
  for (const node of prof.nodes) {
    if (!node.hitCount) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const us = node.hitCount * per;
    const area = areaOf(functionName, url);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    if (area === "(idle)") continue;
    busy += us;
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : "";
    const key = `${functionName || "(anonymous)"} ${where}`.trim();
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const top = (m, n) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => ({ what: k, ms: Math.round(us / 1000), share: busy ? us / busy : 0 }));
  return {
    file: path.relative(root, file),
    wallMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    areas: top(byArea, 15).filter((a) => a.what !== "(idle)"),
    functions: top(byFn, 25),
  };
}

function shortUrl(url) {
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) return u.slice(nm + "node_modules/".length);
  if (u.startsWith(root)) return u.slice(root.length + 1);
  return u;
}

function areaOf(fn, url) {
  if (fn === "(idle)" || fn === "(program)" || fn === "(garbage collector)") return fn;
  if (!url) return "(native / V8)";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  const u = shortUrl(url);
  if (url.includes("node_modules/")) {
    const parts = u.split("/");
    return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (u.startsWith("src/")) return u.split("/").slice(0, 2).join("/");
  return u;
}

// ---------------------------------------------------------------- EXPLAIN

async function explainAt(size) {
  const def = SYSTEMS[prof.system];
  const subs = def.subs ?? 1;
  const sys = await startSystem(ctx, prof.system, { consumers: false, pending: size });
  try {
    log(`explain: filling ${size} pending deliveries over ${subs} subscription(s)`);
    const fill = await ingest(sys, {
      prefix: `X${ctx.seq()}-`,
      total: size,
      subs,
      parallel: 2,
      deadline: Date.now() + 30 * 60_000,
    });
    await ctx.pg.query(`ANALYZE ${sys.schema}.deliveries`);
    await ctx.pg.query(`ANALYZE ${sys.schema}.subscriptions`);
    const url = `${ctx.pgUrl}?options=${encodeURIComponent(`-c search_path=${sys.schema}`)}`;
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(here, "lib", "explain.ts")], {
      cwd: root,
      env: { ...process.env, BENCH_DATABASE_URL: url },
      encoding: "utf8",
      timeout: 300_000,
    });
    if (r.status !== 0) throw new Error(`explain.ts failed: ${r.stderr || r.error}`);
    return { size, fillSeconds: Math.round(fill.seconds), ...JSON.parse(r.stdout) };
  } finally {
    await sys.stop();
  }
}

// ---------------------------------------------------------------- run

const report = { load: null, pg: null, tables: null, cpu: [], explain: [] };
let sampler = null;
let cpuStart = null;
let roles = new Map();
let delivered = 0;
const watch = (sys) => {
  sampler = pgSampler(sys.procs().filter((p) => p.role.startsWith("herald")));
  roles = new Map([...sys.procs().map((p) => [p.pid, p.role]), [ctx.receiver.pid, "receiver"]]);
  cpuStart = cpuSnapshot();
};
// A backlog is watched from the moment its consumer starts (the fill before it is not the subject), a
// re-trigger job from its creation (not the seeding and the dry run).
ctx.onStart = (sys) =>
  prof.load === "none" || prof.load === "backlog" || prof.load === "retrigger" ? undefined : watch(sys);
ctx.onConsumers = (sys) => watch(sys);
ctx.onJob = (sys) => watch(sys);
ctx.onStop = async (sys) => {
  if (!sampler) return;
  report.cpuByProcess = cpuBetween(cpuStart, cpuSnapshot(), roles);
  report.pg = await sampler.stop();
  sampler = null;
  if (sys.schema) report.tables = await tableStats(sys.schema);
  delivered = (await ctx.receiver.call("stats")).unique;
};

try {
  if (prof.load === "throughput") report.load = await throughput(ctx, prof.system);
  else if (prof.load === "latency") report.load = await latency(ctx, prof.system, prof.rate);
  else if (prof.load === "fanout") report.load = await fanout(ctx, prof.system);
  else if (prof.load === "backlog") report.load = await backlog(ctx, prof.system, prof.size ?? 100_000);
  else if (prof.load === "retrigger") report.load = await retrigger(ctx, prof.system);
  if (opts.cpuProf) {
    // Per process, the busiest thread's profile (the main thread; tsx's loader thread only works at start).
    for (const dir of readdirSync(ctx.profileDir)) {
      const files = readdirSync(path.join(ctx.profileDir, dir)).filter((x) => x.endsWith(".cpuprofile"));
      const summaries = files.map((f) => ({
        ...summarizeProfile(path.join(ctx.profileDir, dir, f)),
        process: dir,
      }));
      summaries.sort((a, b) => b.busyMs - a.busyMs);
      if (summaries[0]) report.cpu.push(summaries[0]);
    }
  }
  for (const size of prof.explain) report.explain.push(await explainAt(size));
} finally {
  await close();
}

// ---------------------------------------------------------------- write

const md = [];
const pct = (x) => `${(x * 100).toFixed(1)} %`;
md.push(
  `# Herald profile — ${new Date().toISOString()}`,
  "",
  `\`node bench/profile.mjs ${argv.join(" ")}\``,
  "",
);
if (report.load) md.push("## Load", "", "```json", JSON.stringify(report.load, null, 2), "```", "");
if (report.cpuByProcess) {
  const c = report.cpuByProcess;
  md.push(
    `## CPU by process over the load (${c.seconds} s; the machine was ${c.machineBusyPercent} % busy)`,
    "",
    "| process | CPU seconds | % of one core |",
    "| --- | --- | --- |",
    ...c.groups.map((g) => `| ${g.group} | ${g.coreSeconds.toFixed(1)} | ${g.ofOneCore} % |`),
    "",
  );
}
if (report.pg) {
  md.push(
    `## PostgreSQL: Herald's connections, ${report.pg.samples} samples of pg_stat_activity (every 50 ms)`,
    "",
    "Each line: how many samples found a Herald connection in that state. Divide by the sample count for the",
    "average number of connections doing it at once.",
    "",
    "| samples | role | state | wait | statement |",
    "| --- | --- | --- | --- | --- |",
  );
  for (const [key, n] of report.pg.counts.slice(0, 30)) {
    const [role, state, wait, q] = key.split(" | ");
    md.push(`| ${n} | ${role} | ${state} | ${wait} | \`${q.replaceAll("|", "\\|")}\` |`);
  }
  md.push("");
}
if (report.tables) {
  md.push(
    `## Table statistics (${delivered} webhooks delivered)`,
    "",
    "| table | inserts | updates | HOT updates | dead tuples | live | updates per delivery |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const t of report.tables.tables) {
    md.push(
      `| ${t.relname} | ${t.n_tup_ins} | ${t.n_tup_upd} | ${t.n_tup_hot_upd} | ${t.n_dead_tup} | ${t.n_live_tup} | ${delivered ? (t.n_tup_upd / delivered).toFixed(2) : "–"} |`,
    );
  }
  md.push("", "| relation | kind | size |", "| --- | --- | --- |");
  for (const r of report.tables.sizes)
    md.push(
      `| ${r.relname} | ${r.relkind === "i" ? "index" : "table"} | ${(r.bytes / 1024).toFixed(0)} KiB |`,
    );
  md.push("");
}
for (const c of report.cpu) {
  md.push(
    `## CPU: ${path.basename(c.file)} (busy ${c.busyMs} ms of ${c.wallMs} ms)`,
    "",
    "| area | ms | share of busy |",
    "| --- | --- | --- |",
  );
  for (const a of c.areas) md.push(`| ${a.what} | ${a.ms} | ${pct(a.share)} |`);
  md.push("", "| function (self time) | ms | share of busy |", "| --- | --- | --- |");
  for (const f of c.functions) md.push(`| \`${f.what}\` | ${f.ms} | ${pct(f.share)} |`);
  md.push("");
}
for (const e of report.explain) {
  md.push(
    `## EXPLAIN (ANALYZE, BUFFERS) with ${e.size} deliveries pending (${prof.system}; filled in ${e.fillSeconds} s)`,
    "",
  );
  for (const s of e.steps)
    md.push(`### ${s.step}: \`${s.statement.slice(0, 100)}…\``, "", "```", s.plan, "```", "");
}
const out = path.join(runDir, "profile.md");
writeFileSync(out, `${md.join("\n")}\n`);
writeFileSync(path.join(runDir, "profile.json"), `${JSON.stringify(report, null, 2)}\n`);
log(`profile written: ${path.relative(root, out)}`);
process.stdout.write("", () => process.exit(0));
