/**
 * The receiver every system delivers to, in its own process: answers 200 at once, then counts. It parses
 * the body for the benchmark key (`data.k`), records each key's first and last arrival (latency mode),
 * counts duplicates, and checks per-path order (`/s/<i>` with `data.n` increasing) for ordered runs.
 * Driven over IPC by the benchmark (reset, stats, arrivals); announces when `expect` unique arrivals are in.
 */
import http from "node:http";
import { now } from "./util.mjs";

let st;
function reset(o = {}) {
  st = {
    mode: o.mode ?? "count",
    expect: o.expect ?? 0,
    checkOrder: o.checkOrder ?? false,
    requests: 0,
    unique: 0,
    duplicates: 0,
    orderViolations: 0,
    badBodies: 0,
    first: null,
    last: null,
    reachedAt: null,
    seen: new Set(),
    lastN: new Map(),
    arrivals: new Map(),
    marks: [],
    markEvery: o.markEvery ?? 0,
    /** Count only keys with this prefix (latency: late warm-up arrivals must not count). */
    prefix: o.prefix ?? "",
  };
}
reset();

function onArrival(url, body, at) {
  st.requests += 1;
  let data;
  try {
    const parsed = JSON.parse(body);
    data = parsed?.data ?? parsed;
  } catch {
    st.badBodies += 1;
    return;
  }
  const k = data?.k;
  if (typeof k !== "string") {
    st.badBodies += 1;
    return;
  }
  if (st.prefix && !k.startsWith(st.prefix)) return;
  const path = url ?? "/";
  const id = `${path}|${k}`;
  if (st.seen.has(id)) {
    st.duplicates += 1;
    return;
  }
  st.seen.add(id);
  st.unique += 1;
  if (st.first === null) st.first = at;
  st.last = at;
  if (st.markEvery > 0 && st.unique % st.markEvery === 0) st.marks.push([st.unique, at]);
  if (st.checkOrder && typeof data.n === "number") {
    const prev = st.lastN.get(path);
    if (prev !== undefined && data.n < prev) st.orderViolations += 1;
    st.lastN.set(path, data.n);
  }
  if (st.mode === "latency") {
    const a = st.arrivals.get(k);
    if (a) {
      a[1] = at;
      a[2] += 1;
    } else st.arrivals.set(k, [at, at, 1]);
  }
  if (st.expect > 0 && st.reachedAt === null && st.unique >= st.expect) {
    st.reachedAt = at;
    process.send?.({ evt: "reached", at, unique: st.unique, first: st.first });
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const at = now();
    res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
    res.end("ok");
    onArrival(req.url, Buffer.concat(chunks).toString("utf8"), at);
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 70_000;
server.maxRequestsPerSocket = 0;

function stats() {
  return {
    requests: st.requests,
    unique: st.unique,
    duplicates: st.duplicates,
    orderViolations: st.orderViolations,
    badBodies: st.badBodies,
    first: st.first,
    last: st.last,
    reachedAt: st.reachedAt,
    marks: st.marks,
  };
}

process.on("message", (m) => {
  const answer = (body) => process.send?.({ re: m.id, ...body });
  try {
    switch (m.cmd) {
      case "reset":
        reset(m);
        answer({ ok: true });
        break;
      case "stats":
        answer(stats());
        break;
      case "arrivals":
        answer({ arrivals: [...st.arrivals] });
        break;
      case "exit":
        answer({ ok: true });
        server.close();
        setTimeout(() => process.exit(0), 50);
        break;
      default:
        answer({ error: `unknown command ${m.cmd}` });
    }
  } catch (err) {
    answer({ error: String(err) });
  }
});
process.on("disconnect", () => process.exit(0));

server.listen(0, "127.0.0.1", () => {
  process.send?.({ evt: "ready", port: server.address().port });
});
