/**
 * The scenarios. Each runs one system at a time against the shared receiver and returns a plain result
 * object; every wait is bounded in time, every loop in count.
 */
import { measureFloor, measureMessage } from "./floor.mjs";
import { cpuMeter, memoryOf, memorySampler, resetPeak } from "./proc.mjs";
import { items, SYSTEMS, startSystem } from "./systems.mjs";
import { EVENT_TYPE, now, payload, percentile, sleep } from "./util.mjs";

const BATCH = 1000;
/** How long the latency scenario waits for the last events after its window (then they count as missing). */
const STRAGGLER_WAIT_MS = 20_000;

/** Sends `total` items in batches of 1,000, `parallel` batches at a time; resolves with the seconds taken. */
export async function ingest(sys, { prefix, total, subs, parallel, deadline }) {
  const t0 = now();
  let next = 0;
  const lane = async () => {
    while (next < total && Date.now() < deadline) {
      const from = next;
      const count = Math.min(BATCH, total - from);
      next += count;
      await sys.produceBatch(items(prefix, from, count, subs));
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  return { seconds: (now() - t0) / 1000, sent: Math.min(next, total) };
}

function reachedOrNull(ctx, timeoutMs) {
  return ctx.receiver.waitEvent((m) => m.evt === "reached", timeoutMs).catch(() => null);
}

/**
 * (a′) The floor, in three parts: PostgreSQL alone taking one delivery through Herald's tables
 * (`herald-tables`: the event and delivery inserted, claimed, recorded) or through a minimal job table
 * (`minimal`), no HTTP, no Herald code; and (`message`) the CPU of signing one webhook and of parsing one
 * event from a JSON batch (lib/floor.mjs). Runs first, before any system has left tables
 * behind for autovacuum to work on.
 */
export async function floor(ctx, key) {
  const n = Math.max(20_000, Math.min(ctx.opts.n, 100_000));
  if (key === "message") return measureMessage({ n });
  return measureFloor({ pgUrl: ctx.pgUrl, n, minimal: key === "minimal" });
}

/** (a) + (d): N deliveries as fast as possible, from the first enqueue to the N-th arrival; peak RSS. */
export async function throughput(ctx, key) {
  const { n, capSeconds } = ctx.opts;
  const def = SYSTEMS[key];
  const ordered = def.ordering === "ordered";
  const subs = def.subs ?? ctx.opts.throughputSubs ?? 1;
  const sys = await startSystem(ctx, key, { pending: n, subs });
  try {
    await ctx.receiver.call("reset", { expect: n, checkOrder: ordered });
    const procs = [...sys.procs(), { role: "receiver", pid: ctx.receiver.pid }];
    const mem = memorySampler(procs);
    const prefix = `T${ctx.seq()}-`;
    const cpu = cpuMeter(procs);
    const t0 = now();
    const deadline = Date.now() + capSeconds * 1000;
    const reached = reachedOrNull(ctx, capSeconds * 1000);
    let ingestResult;
    if (sys.runAll) {
      await sys.runAll(n, subs, prefix);
      ingestResult = { seconds: (now() - t0) / 1000, sent: n };
    } else {
      // Ordered queues need one producer in sequence, so that the order the driver assigned is the order of
      // acceptance (a second batch in flight could commit first, legitimately reordering the check).
      ingestResult = await ingest(sys, {
        prefix,
        total: n,
        subs,
        parallel: ordered ? 1 : ctx.opts.producers,
        deadline,
      });
    }
    const hit = await reached;
    const cpuUsed = cpu.stop();
    const end = hit ? hit.at : now();
    const st = await ctx.receiver.call("stats");
    const peaks = mem.stop();
    const seconds = (end - t0) / 1000;
    return {
      n,
      subscriptions: subs,
      delivered: st.unique,
      seconds: round(seconds, 2),
      perSecond: Math.round(st.unique / seconds),
      ingestSeconds: round(ingestResult.seconds, 2),
      capped: !hit,
      duplicates: st.duplicates,
      orderViolations: ordered ? st.orderViolations : null,
      peakRssMiB: peaks,
      cpu: cpuUsed,
    };
  } finally {
    await sys.stop();
  }
}

/**
 * (b): events at a fixed rate for a fixed time, one at a time (POST /v1/events, queue.add, boss.send);
 * latency = arrival at the receiver − the moment the system accepted the event (its 202 / the add's
 * promise). An arrival before the acknowledgement counts as 0 (the receiver already had it).
 */
export async function latency(ctx, key, rate) {
  const { latencySeconds } = ctx.opts;
  const subs = ctx.opts.latencySubs ?? SYSTEMS[key].subs ?? 1;
  const sys = await startSystem(ctx, key, { pending: rate * latencySeconds, subs });
  try {
    // Warm-up: one second at the same rate, not measured (connections, JIT), then a clean receiver.
    // (At most 3 s for its stragglers: with push drain off they wait for the scheduler, and the receiver
    // counts only the measured keys from then on.)
    const warmPrefix = `W${ctx.seq()}-`;
    await ctx.receiver.call("reset", { mode: "latency", prefix: warmPrefix });
    const warm = await drive(ctx, sys, warmPrefix, rate, 1, subs);
    await waitArrivals(ctx, warm.accepted.length, 3_000);
    const prefix = `L${ctx.seq()}-`;
    await ctx.receiver.call("reset", { mode: "latency", prefix });
    const run = await drive(ctx, sys, prefix, rate, latencySeconds, subs);
    // Push drain off waits for the scheduler (10 s by default): allow for it, bounded. An event still
    // missing then counts as slower than anything measured (its latency is only known to exceed the wait).
    await waitArrivals(ctx, run.accepted.length, STRAGGLER_WAIT_MS);
    const st = await ctx.receiver.call("stats");
    const { arrivals } = await ctx.receiver.call("arrivals", {}, 60_000);
    const at = new Map(arrivals);
    const fromAccept = [];
    const fromSend = [];
    let early = 0;
    let missing = 0;
    for (const e of run.accepted) {
      const a = at.get(e.k);
      if (!a) {
        missing += 1;
        fromAccept.push(Number.POSITIVE_INFINITY);
        fromSend.push(Number.POSITIVE_INFINITY);
        continue;
      }
      const d = a[0] - e.acceptedAt;
      if (d < 0) early += 1;
      fromAccept.push(Math.max(0, d));
      fromSend.push(a[0] - e.sentAt);
    }
    fromAccept.sort((x, y) => x - y);
    fromSend.sort((x, y) => x - y);
    const p = (xs, q) => round(percentile(xs, q), 1);
    return {
      rate,
      subscriptions: subs,
      seconds: latencySeconds,
      offered: run.offered,
      accepted: run.accepted.length,
      refused: run.refused,
      skipped: run.skipped,
      delivered: fromAccept.length - missing,
      waitedSeconds: STRAGGLER_WAIT_MS / 1000,
      missing,
      duplicates: st.duplicates,
      arrivedBeforeAck: early,
      achievedRate: Math.round(run.accepted.length / latencySeconds),
      p50: p(fromAccept, 50),
      p95: p(fromAccept, 95),
      p99: p(fromAccept, 99),
      max: p(fromAccept, 100),
      fromSend: { p50: p(fromSend, 50), p99: p(fromSend, 99), max: p(fromSend, 100) },
      ackMs: { p50: p(run.ackMs, 50), p99: p(run.ackMs, 99) },
    };
  } finally {
    await sys.stop();
  }
}

/** Offers `rate` events/s for `seconds` (open loop: sends do not wait for earlier answers). */
async function drive(ctx, sys, prefix, rate, seconds, subs) {
  const total = Math.round(rate * seconds);
  const maxOutstanding = 5000;
  const accepted = [];
  const ackMs = [];
  const pending = new Set();
  let refused = 0;
  let skipped = 0;
  let sent = 0;
  const t0 = now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - t0) / 1000) * rate) + 1);
    while (sent < due) {
      const i = sent++;
      if (pending.size >= maxOutstanding) {
        skipped += 1;
        continue;
      }
      const it = { sub: i % subs, k: `${prefix}${i}`, n: Math.floor(i / subs) };
      const sentAt = now();
      const p = sys.produceOne(it).then(
        () => {
          const acceptedAt = now();
          accepted.push({ k: it.k, sentAt, acceptedAt });
          ackMs.push(acceptedAt - sentAt);
        },
        (err) => {
          refused += 1;
          if (refused <= 3) ctx.log(`  event refused: ${err.message}`);
        },
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await sleep(1);
  }
  await Promise.race([Promise.allSettled([...pending]), sleep(60_000)]);
  ackMs.sort((x, y) => x - y);
  return { offered: total, accepted, refused, skipped, ackMs };
}

async function waitArrivals(ctx, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await ctx.receiver.call("stats");
    if (st.unique >= expected || Date.now() >= deadline) return st;
    await sleep(100);
  }
}

/**
 * (c) + (d): `pending` deliveries queued while nothing consumes (Herald: `herald api` only, batches of
 * 1,000 on POST /v1/events/batch), then the consumer starts (`herald dispatcher`, the queue's worker) and
 * we time the drain from the first arrival: the first 1,000 deliveries, and the sustained rate over at
 * most `backlogWindow` deliveries or `backlogSeconds`, whichever comes first.
 */
export async function backlog(ctx, key, pending) {
  const { backlogWindow, backlogSeconds } = ctx.opts;
  const sys = await startSystem(ctx, key, { consumers: false, pending });
  try {
    const window = Math.min(pending, backlogWindow);
    await ctx.receiver.call("reset", { expect: window, markEvery: 1000 });
    const fill = await ingest(sys, {
      prefix: `B${ctx.seq()}-`,
      total: pending,
      subs: 1,
      parallel: 2,
      deadline: Date.now() + 30 * 60_000,
    });
    // --analyze-after-fill (profiling): fresh planner statistics before the drain, to tell a plan that
    // depends on stale statistics from a cost that grows with the backlog.
    if (ctx.opts.analyzeAfterFill && sys.schema) await ctx.pg.query(`ANALYZE ${sys.schema}.deliveries`);
    const reached = reachedOrNull(ctx, 60_000 + backlogSeconds * 1000);
    const started = now();
    await sys.startConsumers();
    await ctx.onConsumers?.(sys);
    const mem = memorySampler([...sys.procs(), { role: "receiver", pid: ctx.receiver.pid }]);
    const first = await waitFirstArrival(ctx, 60_000);
    const hit = first
      ? await Promise.race([reached, sleep(Math.max(0, first + backlogSeconds * 1000 - now()))])
      : null;
    const st = await ctx.receiver.call("stats");
    const peaks = mem.stop();
    const drainSeconds = st.first && st.last > st.first ? (st.last - st.first) / 1000 : null;
    const mark1k = st.marks.find(([count]) => count === 1000);
    const first1k = st.first && mark1k ? (mark1k[1] - st.first) / 1000 : null;
    return {
      pending,
      insertSeconds: round(fill.seconds, 1),
      insertPerSecond: Math.round(fill.sent / fill.seconds),
      window,
      delivered: st.unique,
      windowEndedBy: hit ? "count" : "time",
      startupSeconds: st.first ? round((st.first - started) / 1000, 2) : null,
      drainSeconds: drainSeconds === null ? null : round(drainSeconds, 2),
      perSecond: drainSeconds ? Math.round((st.unique - 1) / drainSeconds) : null,
      first1kPerSecond: first1k ? Math.round(999 / first1k) : null,
      duplicates: st.duplicates,
      peakRssMiB: peaks,
    };
  } finally {
    await sys.stop();
  }
}

async function waitFirstArrival(ctx, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = await ctx.receiver.call("stats");
    if (st.first) return st.first;
    await sleep(50);
  }
  return null;
}

/**
 * (e): one event to 100 subscriptions, `fanoutEvents` times in sequence: the time from acceptance to the
 * first and to the 100th arrival. Herald fans out itself; the competitors enqueue 100 jobs (addBulk,
 * insert), which is what the application would have to do.
 */
export async function fanout(ctx, key) {
  const { fanoutEvents } = ctx.opts;
  const width = 100;
  const sys = await startSystem(ctx, key, { fanout: width });
  try {
    const toLast = [];
    const toFirst = [];
    let incomplete = 0;
    for (let r = -1; r < fanoutEvents; r++) {
      await ctx.receiver.call("reset", { mode: "latency", expect: width });
      const reached = reachedOrNull(ctx, 15_000);
      const it = { sub: 0, k: `F${ctx.seq()}-${r}`, n: r + 1 };
      await sys.produceOne(it);
      const acceptedAt = now();
      const hit = await reached;
      if (r < 0) continue; // warm-up
      if (!hit) {
        incomplete += 1;
        continue;
      }
      const { arrivals } = await ctx.receiver.call("arrivals");
      const a = new Map(arrivals).get(it.k);
      toFirst.push(Math.max(0, a[0] - acceptedAt));
      toLast.push(Math.max(0, a[1] - acceptedAt));
    }
    toFirst.sort((x, y) => x - y);
    toLast.sort((x, y) => x - y);
    const p50last = percentile(toLast, 50);
    return {
      width,
      events: fanoutEvents,
      incomplete,
      firstP50: round(percentile(toFirst, 50), 1),
      lastP50: round(p50last, 1),
      lastP95: round(percentile(toLast, 95), 1),
      lastMax: round(percentile(toLast, 100), 1),
      perSecond: p50last ? Math.round((width / p50last) * 1000) : null,
    };
  } finally {
    await sys.stop();
  }
}

/** How often the re-trigger scenario reads the job's progress (GET /v1/retriggers/:id). */
const JOB_POLL_MS = 500;
/** After the job completed, the longest wait for the receiver to have every re-emitted webhook. */
const RECEIVER_WAIT_AFTER_JOB_MS = 120_000;
const FINAL_STATUSES = ["completed", "cancelled", "failed"];

/**
 * (f) Re-trigger jobs (issue 7): `retriggerIds` events of one type, each with its own aggregate ID, are
 * seeded through POST /v1/events/batch (1,000 a batch) while no subscription matches them, so nothing is
 * delivered and the receiver later sees only the job's re-emitted webhooks; then one subscription is
 * created and we measure (i) a dry run with every aggregate ID inline (wall time, response size, the
 * API's peak RSS) and (ii) the real job (`retriggerBatch` per chunk, delay_ms 0): creation to
 * `completed`, items/s, creation to the receiver having every webhook, duplicates, the dispatcher's RSS.
 */
export async function retrigger(ctx, key) {
  const { retriggerIds: n, retriggerBatch: batchSize, retriggerSeconds } = ctx.opts;
  const limitMs = retriggerSeconds * 1000;
  const sys = await startSystem(ctx, key, { deferSubscriptions: true, pending: n });
  try {
    const tenant = sys.tenantOf(0);
    const prefix = `R${ctx.seq()}-`;
    const aggregateIds = Array.from({ length: n }, (_, i) => `${prefix}agg-${i}`);

    // Seed: no subscription exists yet, so every event is stored with 0 deliveries.
    const seedStart = now();
    const seedDeadline = Date.now() + limitMs;
    let next = 0;
    let accepted = 0;
    let seededDeliveries = 0;
    const lane = async () => {
      while (next < n && Date.now() < seedDeadline) {
        const from = next;
        const count = Math.min(BATCH, n - from);
        next += count;
        const events = new Array(count);
        for (let j = 0; j < count; j++) {
          const i = from + j;
          events[j] = {
            tenant_id: tenant,
            event_type: EVENT_TYPE,
            aggregate_id: aggregateIds[i],
            payload: payload(`${prefix}${i}`, i, Date.now()),
          };
        }
        const r = await sys.call("POST", "/v1/events/batch", { events });
        for (const e of r.events) {
          if (!e.duplicate) accepted += 1;
          seededDeliveries += e.deliveries;
        }
      }
    };
    await Promise.all([lane(), lane()]);
    const seedSeconds = (now() - seedStart) / 1000;
    if (accepted !== n) throw new Error(`seeding: ${accepted} of ${n} events accepted`);
    if (seededDeliveries !== 0) throw new Error(`seeding: ${seededDeliveries} deliveries made, expected 0`);

    const [subscriptionId] = await sys.createSubscriptions();
    const procs = sys.procs();
    const api = procs.find((p) => p.role === "herald api") ?? procs[0];
    const dispatcher = procs.find((p) => p.role === "herald dispatcher") ?? procs[0];
    const eventsAnalyzed = sys.schema
      ? ((
          await ctx.pg.query(
            "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'events'",
            [sys.schema],
          )
        ).rows[0]?.analyzed ?? null)
      : null;
    const body = {
      tenant_id: tenant,
      event_type: EVENT_TYPE,
      aggregate_ids: aggregateIds,
      subscription_id: subscriptionId,
      batch_size: batchSize,
      delay_ms: 0,
    };

    // (i) Dry run: the API's peak is reset first, so it is the dry run's and not the seeding's.
    const dryText = JSON.stringify({ ...body, dry_run: true });
    const apiRssBefore = memoryOf(api.pid)?.rssMiB ?? null;
    const dryPeakReset = resetPeak(api.pid);
    const dryMem = memorySampler([api], 100);
    const dryStart = now();
    const dry = await sys.request("POST", "/v1/retriggers", dryText, limitMs);
    const dryMs = now() - dryStart;
    const dryPeaks = dryMem.stop();
    if (dry.status !== 200) throw new Error(`dry run: HTTP ${dry.status} ${dry.text.slice(0, 300)}`);
    const preview = JSON.parse(dry.text);
    if (preview.items?.length !== n || preview.would_trigger !== n) {
      throw new Error(
        `dry run: ${preview.items?.length} items, ${preview.would_trigger} WOULD_TRIGGER; expected ${n}`,
      );
    }

    // (ii) The job. Peaks reset again: the dispatcher's and the API's are the job's.
    await ctx.receiver.call("reset", { expect: n, markEvery: Math.max(1000, Math.floor(n / 10)) });
    const reached = reachedOrNull(ctx, limitMs + RECEIVER_WAIT_AFTER_JOB_MS);
    // Hook for bench/profile.mjs (--load retrigger): watch the job, not the seeding.
    await ctx.onJob?.(sys);
    const jobPeakReset = procs.map((p) => resetPeak(p.pid)).every(Boolean);
    const mem = memorySampler(procs);
    const createStart = now();
    const created = await sys.request("POST", "/v1/retriggers", JSON.stringify(body), limitMs);
    const createdAt = now();
    if (created.status !== 202)
      throw new Error(`create: HTTP ${created.status} ${created.text.slice(0, 300)}`);
    const jobId = JSON.parse(created.text).job_id;
    const deadline = Date.now() + limitMs;
    const maxPolls = Math.ceil(limitMs / JOB_POLL_MS) + 10;
    const progress = [];
    let job = null;
    let polls = 0;
    let seenFinalAt = null;
    while (polls < maxPolls && Date.now() < deadline) {
      await sleep(JOB_POLL_MS);
      polls += 1;
      job = await sys.call("GET", `/v1/retriggers/${jobId}`);
      const at = (now() - createdAt) / 1000;
      if (progress.length === 0 || at - progress[progress.length - 1][0] >= 5) {
        progress.push([round(at, 1), job.completed]);
      }
      if (FINAL_STATUSES.includes(job.status)) {
        seenFinalAt = now();
        break;
      }
    }
    const hit =
      seenFinalAt !== null
        ? await Promise.race([reached, sleep(RECEIVER_WAIT_AFTER_JOB_MS).then(() => null)])
        : null;
    const st = await ctx.receiver.call("stats");
    const peaks = mem.stop();
    const ms = (iso) => (iso ? Date.parse(iso) : null);
    const createdMs = ms(job?.created_at);
    const startedMs = ms(job?.started_at);
    const finishedMs = job?.status === "completed" ? ms(job.finished_at) : null;
    const jobSeconds = finishedMs && createdMs ? (finishedMs - createdMs) / 1000 : null;
    const runSeconds = finishedMs && startedMs ? (finishedMs - startedMs) / 1000 : null;
    return {
      ids: n,
      seedSeconds: round(seedSeconds, 1),
      seedPerSecond: Math.round(n / seedSeconds),
      eventsAnalyzed,
      dryRun: {
        seconds: round(dryMs / 1000, 2),
        requestMiB: round(Buffer.byteLength(dryText) / 2 ** 20, 2),
        responseMiB: round(Buffer.byteLength(dry.text) / 2 ** 20, 2),
        wouldTrigger: preview.would_trigger,
        wouldSkip: preview.would_skip,
        wouldFail: preview.would_fail,
        planChunks: preview.plan?.chunks ?? null,
        apiRssBeforeMiB: apiRssBefore === null ? null : Math.round(apiRssBefore),
        apiPeakMiB: dryPeaks[api.role] ?? null,
        peakReset: dryPeakReset,
      },
      job: {
        batchSize,
        status: job?.status ?? null,
        total: job?.total ?? null,
        sent: job?.sent ?? null,
        skipped: job?.skipped ?? null,
        failed: job?.failed ?? null,
        chunks: job?.chunks_done ?? null,
        createSeconds: round((createdAt - createStart) / 1000, 2),
        // From the create transaction's start (it inserts the items) to the first chunk's.
        startedAfterCreatedSeconds: startedMs && createdMs ? round((startedMs - createdMs) / 1000, 2) : null,
        seconds: round(jobSeconds, 1),
        runSeconds: round(runSeconds, 1),
        seenCompletedSeconds: seenFinalAt ? round((seenFinalAt - createdAt) / 1000, 1) : null,
        itemsPerSecond: jobSeconds ? Math.round((job.total ?? n) / jobSeconds) : null,
        received: st.unique,
        receivedFirstSeconds: st.first ? round((st.first - createdAt) / 1000, 2) : null,
        receivedAllSeconds: hit ? round((hit.at - createdAt) / 1000, 1) : null,
        duplicates: st.duplicates,
        polls,
        progress,
        peakReset: jobPeakReset,
      },
      dispatcherRole: dispatcher.role,
      peakRssMiB: peaks,
    };
  } finally {
    await sys.stop();
  }
}

function round(x, digits) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
