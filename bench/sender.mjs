#!/usr/bin/env node
/**
 * What Herald's outbound path costs per POST without the database: `node bench/sender.mjs [--n 50000]`.
 *
 * A receiver in a child process (node:http, answers 200) on loopback; this process keeps 64 POSTs in flight,
 * alternating two senders in rounds: the ceiling's bare undici `Pool.request` with a JSON body, and Herald's
 * own path for a claimed delivery — `buildRequest` (body, Standard Webhooks signature) and the sender
 * (`createSender`: undici Agent, the SSRF-checking connector, the response handler), plus `attemptResult`.
 * Reports requests/s and this process's CPU per request (user + system, from `process.cpuUsage`). Needs
 * Herald's compiled build (`npm ci` makes it; `npm run build` after editing `src/`).
 */
import { fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Pool } from "undici";
import { numberOption as opt } from "./lib/util.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const N = opt("--n", 50_000);
const ROUNDS = opt("--rounds", 2);
const CONCURRENCY = 64;
if (!(N > 0 && N <= 10_000_000 && ROUNDS > 0 && ROUNDS <= 20))
  throw new Error("sender: --n 1..10,000,000, --rounds 1..20");

const dist = (p) => pathToFileURL(path.join(root, "dist", p)).href;
if (!fs.existsSync(path.join(root, "dist", "build.json")))
  throw new Error("sender: run `npm run build` first");
const { createSender } = await import(dist("http/sender.js"));
const { buildRequest } = await import(dist("dispatch/message.js"));
const { attemptResult } = await import(dist("dispatch/outcome.js"));

const receiverCode = `
import http from "node:http";
const server = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => { res.writeHead(200, { "content-type": "text/plain" }); res.end("ok"); });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));`;
const receiver = fork("--input-type=module", [], { execArgv: ["--input-type=module", "-e", receiverCode] });
const { port } = await new Promise((resolve, reject) => {
  receiver.once("message", resolve);
  receiver.once("exit", (code) => reject(new Error(`receiver exited with ${code}`)));
});
const origin = `http://127.0.0.1:${port}`;
const data = (i) => ({ k: "sender", n: i, status: "executed", note: "benchmark event: counterparty signed" });

const pool = new Pool(origin, { connections: CONCURRENCY, keepAliveTimeout: 60_000 });
const bare = async (i) => {
  const body = JSON.stringify({ type: "bench.event", timestamp: new Date().toISOString(), data: data(i) });
  const res = await pool.request({
    path: "/s/x",
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
};
const sender = createSender({ timeoutMs: 15_000, allowPrivate: true });
const herald = async (i) => {
  const claimed = {
    delivery_id: i,
    subscription_id: "sub_bench",
    event_id: i,
    webhook_id: `msg_${i}`,
    attempt_number: 1,
    ordering: "unordered",
    url: `${origin}/s/x`,
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    previous_secret: null,
    previous_secret_expires_at: null,
    event_type: "bench.event",
    occurred_at: new Date(),
    payload: data(i),
  };
  // The secret above is stored as it is (not sealed): it opens as itself.
  const sent = await sender.send(buildRequest(claimed, { open: (s) => s }));
  const result = attemptResult(i, 1, sent, [5000]);
  if (result.status !== "delivered") throw new Error(JSON.stringify(result));
};

async function measure(send, n) {
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await send(next++);
    }),
  );
  const cpu = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  return { per_s: Math.round(n / seconds), cpu_us_per_request: Math.round((cpu.user + cpu.system) / n) };
}

try {
  await measure(bare, 5_000);
  await measure(herald, 5_000);
  const runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    runs.push({ round: r + 1, sender: "bare undici Pool.request", ...(await measure(bare, N)) });
    runs.push({
      round: r + 1,
      sender: "Herald: buildRequest + createSender + attemptResult",
      ...(await measure(herald, N)),
    });
  }
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      machine: { cores: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      node: process.version,
      n: N,
      concurrency: CONCURRENCY,
      runs,
    }),
  );
} finally {
  await pool.close();
  await sender.close();
  receiver.kill();
}
