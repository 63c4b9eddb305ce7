/**
 * The ceiling: a bare undici POST loop at the receiver, no persistence, no retries, no signing — the most
 * this machine can push through the receiver with the same concurrency (64 POSTs in flight).
 * `run` POSTs n messages as fast as it can; `post` POSTs the given events at once (latency and fan-out).
 */
import { Pool } from "undici";
import { payload } from "./util.mjs";

const origin = process.env.BENCH_RECEIVER_ORIGIN;
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const pool = new Pool(origin, { connections: concurrency, keepAliveTimeout: 60_000 });
let errors = 0;

async function post(path, data) {
  const body = JSON.stringify({ type: "bench.event", timestamp: new Date().toISOString(), data });
  try {
    const res = await pool.request({
      path,
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await res.body.dump();
    if (res.statusCode !== 200) errors += 1;
  } catch {
    errors += 1;
  }
}

// Latency and fan-out: a queue drained with at most `concurrency` POSTs in flight.
const queue = [];
let inFlight = 0;
function pump() {
  while (inFlight < concurrency && queue.length > 0) {
    const { path, data } = queue.shift();
    inFlight += 1;
    void post(path, data).finally(() => {
      inFlight -= 1;
      pump();
    });
  }
}

async function run(n, subs, prefix) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await post(`/s/${i % subs}`, payload(`${prefix}${i}`, Math.floor(i / subs), Date.now()));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

process.on("message", async (m) => {
  const answer = (body) => process.send?.({ re: m.id, ...body });
  try {
    if (m.cmd === "run") {
      await run(m.n, m.subs ?? 1, m.prefix ?? "c");
      answer({ ok: true, errors });
    } else if (m.cmd === "post") {
      for (const e of m.events) queue.push(e);
      pump();
      if (m.id !== undefined) answer({ ok: true });
    } else if (m.cmd === "stats") {
      answer({ errors, queued: queue.length, inFlight });
    } else {
      answer({ error: `unknown command ${m.cmd}` });
    }
  } catch (err) {
    answer({ error: String(err) });
  }
});
process.on("disconnect", () => process.exit(0));
process.send?.({ evt: "ready" });
