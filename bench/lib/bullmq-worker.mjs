/**
 * BullMQ + undici, the way a Node team would write it: one job per delivery, a Worker with concurrency
 * 64 whose processor signs and POSTs the webhook (a non-2xx throws, so BullMQ retries it with its
 * exponential back-off). Jobs are added by the benchmark driver (`addBulk` for batches).
 */
import { Worker } from "bullmq";
import IORedis from "ioredis";
import { createPoster } from "./webhook.mjs";

const { BENCH_REDIS_URL, BENCH_QUEUE, BENCH_PREFIX, BENCH_RECEIVER_ORIGIN } = process.env;
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const connection = new IORedis(BENCH_REDIS_URL, { maxRetriesPerRequest: null });
const poster = createPoster();

const worker = new Worker(
  BENCH_QUEUE,
  async (job) => {
    const { path, type, data } = job.data;
    await poster.post(`${BENCH_RECEIVER_ORIGIN}${path}`, `msg_${job.id}`, type, data);
  },
  { connection, prefix: BENCH_PREFIX, concurrency, autorun: true },
);
worker.on("error", (err) => console.error("worker error", err));

async function shutdown() {
  await worker.close();
  await poster.close();
  await connection.quit();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown());
process.on("disconnect", () => void shutdown());
await worker.waitUntilReady();
process.send?.({ evt: "ready" });
