/**
 * pg-boss + undici: one job per delivery on PostgreSQL. A fetch loop keeps up to 64 POSTs in flight,
 * fetching jobs in batches (`fetch` with `batchSize` = free slots, once at least 16 are free) and completing / failing them in
 * batches (`complete` / `fail` with id arrays), so pg-boss retries failures with its back-off. When the
 * queue is empty it polls every BENCH_POLL_MS (50 ms by default: far quicker than `work()`'s 0.5 s floor).
 */
import PgBoss from "pg-boss";
import { sleep } from "./util.mjs";
import { createPoster } from "./webhook.mjs";

const { BENCH_DATABASE_URL, BENCH_SCHEMA, BENCH_QUEUE, BENCH_RECEIVER_ORIGIN } = process.env;
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const pollMs = Number(process.env.BENCH_POLL_MS ?? 50);
const minBatch = Math.max(1, Math.floor(concurrency / 4));
const boss = new PgBoss({
  connectionString: BENCH_DATABASE_URL,
  schema: BENCH_SCHEMA,
  schedule: false,
  max: 10,
});
boss.on("error", (err) => console.error("pg-boss error", err));
const poster = createPoster();

let running = true;
let inFlight = 0;
let completed = [];
let failed = [];
let flushing = null;
let wake = null;

function wakeLoop() {
  if (wake) {
    const w = wake;
    wake = null;
    w();
  }
}

function flushSoon() {
  if (flushing) return;
  flushing = (async () => {
    while (completed.length > 0 || failed.length > 0) {
      const ok = completed;
      const bad = failed;
      completed = [];
      failed = [];
      try {
        if (ok.length > 0) await boss.complete(BENCH_QUEUE, ok);
        if (bad.length > 0) await boss.fail(BENCH_QUEUE, bad);
      } catch (err) {
        console.error("complete/fail failed; retrying", err);
        completed = ok.concat(completed);
        failed = bad.concat(failed);
        await sleep(100);
      }
    }
    flushing = null;
  })();
}

async function loop() {
  while (running) {
    const room = concurrency - inFlight;
    // Fetch in batches: wait for a quarter of the slots to be free unless nothing is in flight.
    if (room <= 0 || (inFlight > 0 && room < minBatch)) {
      await new Promise((r) => {
        wake = r;
      });
      continue;
    }
    let jobs;
    try {
      jobs = await boss.fetch(BENCH_QUEUE, { batchSize: room });
    } catch (err) {
      console.error("fetch failed", err);
      await sleep(200);
      continue;
    }
    if (!jobs || jobs.length === 0) {
      await Promise.race([sleep(pollMs), new Promise((r) => (wake = r))]);
      wake = null;
      continue;
    }
    for (const job of jobs) {
      inFlight += 1;
      const { path, type, data } = job.data;
      poster
        .post(`${BENCH_RECEIVER_ORIGIN}${path}`, `msg_${job.id}`, type, data)
        .then(
          () => completed.push(job.id),
          () => failed.push(job.id),
        )
        .finally(() => {
          inFlight -= 1;
          flushSoon();
          wakeLoop();
        });
    }
  }
}

async function shutdown() {
  running = false;
  wakeLoop();
  while (inFlight > 0) await sleep(20);
  if (flushing) await flushing;
  await boss.stop({ graceful: true, wait: true, timeout: 5000 });
  await poster.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown());
process.on("disconnect", () => void shutdown());

/**
 * pg-boss's own consumer: BENCH_PGBOSS_WORKERS `work()` workers, each fetching up to BENCH_PGBOSS_BATCH jobs
 * at a time (polling every BENCH_PGBOSS_POLL_S when the queue is empty) and POSTing a batch all at once; the
 * batch completes when the handler returns, after the failed jobs were failed (so pg-boss retries them).
 */
async function work() {
  const workers = Number(process.env.BENCH_PGBOSS_WORKERS ?? 8);
  const batchSize = Number(process.env.BENCH_PGBOSS_BATCH ?? 500);
  const pollingIntervalSeconds = Number(process.env.BENCH_PGBOSS_POLL_S ?? 0.5);
  for (let i = 0; i < workers; i++) {
    await boss.work(BENCH_QUEUE, { batchSize, pollingIntervalSeconds }, async (jobs) => {
      inFlight += jobs.length;
      const sent = await Promise.allSettled(
        jobs.map((job) => {
          const { path, type, data } = job.data;
          return poster.post(`${BENCH_RECEIVER_ORIGIN}${path}`, `msg_${job.id}`, type, data);
        }),
      );
      inFlight -= jobs.length;
      const bad = jobs.filter((_, n) => sent[n].status === "rejected").map((job) => job.id);
      if (bad.length > 0) await boss.fail(BENCH_QUEUE, bad);
    });
  }
}

await boss.start();
process.send?.({ evt: "ready" });
if (process.env.BENCH_PGBOSS_MODE === "work") await work();
else await loop();
