/**
 * The scenarios. Each runs one system at a time against the shared receiver and returns a plain result
 * object; every wait is bounded in time, every loop in count.
 */
import { memorySampler } from "./proc.mjs";
import { items, SYSTEMS, startSystem } from "./systems.mjs";
import { now, percentile, sleep } from "./util.mjs";

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

/** (a) + (d): N deliveries as fast as possible, from the first enqueue to the N-th arrival; peak RSS. */
export async function throughput(ctx, key) {
  const { n, capSeconds } = ctx.opts;
  const def = SYSTEMS[key];
  const ordered = def.ordering === "ordered";
  const subs = def.subs ?? ctx.opts.throughputSubs ?? 1;
  const sys = await startSystem(ctx, key, { pending: n, subs });
  try {
    await ctx.receiver.call("reset", { expect: n, checkOrder: ordered });
    const mem = memorySampler([...sys.procs(), { role: "receiver", pid: ctx.receiver.pid }]);
    const prefix = `T${ctx.seq()}-`;
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

function round(x, digits) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
