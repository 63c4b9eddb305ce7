import fs from "node:fs";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Webhook } from "standardwebhooks";
import type { Rng } from "./rng.ts";

/** How the receiver answered one request. */
export type Answer = "ok" | "fail" | "reset" | "hang" | "slow";

/** Chances of each misbehaviour; the rest is an immediate 200. */
export interface Flaps {
  fail: number;
  reset: number;
  hang: number;
  slow: number;
}

/** New connections are traced in batches, this long after the first of a batch arrived. */
const TRACE_BATCH_MS = 20;
const RESET_AFTER_MS = 3 * TRACE_BATCH_MS;

export interface Endpoint {
  secret: string;
  flaps: Flaps;
  /** Events this endpoint always answers 500 (they must end in the DLQ). */
  alwaysFails?: (seq: number) => boolean;
}

export interface Receipt {
  /** The endpoint (path /s/<key>), one per subscription. */
  key: string;
  webhookId: string;
  seq: number;
  /** webhook-timestamp, unix seconds. */
  sentAt: number;
  at: number;
  answer: Answer;
  /** A 2xx went back on the connection (false when Herald gave up first), and when. */
  okSent: boolean;
  answeredAt: number;
  verified: boolean;
  conn: number;
}

export interface ReceiverTimings {
  /** Hanging requests are held this long (longer than Herald's request timeout), then the socket is destroyed. */
  hangMs: number;
  /** Slow answers come after [min, max) ms: longer than the drain-lock TTL, shorter than the request timeout. */
  slowMinMs: number;
  slowMaxMs: number;
}

/**
 * The run's webhook consumer: one path per subscription, every request verified with the `standardwebhooks`
 * package and recorded (webhook-id, the event's sequence number, arrival order, the answer given), answered
 * with a seeded mix of 200s, 500s, connection resets, hangs past the request timeout and answers slower than
 * the drain-lock TTL. Each connection is traced to the Herald process that opened it (/proc), so the checks
 * can tell which dispatcher sent what.
 */
export class ChaosReceiver {
  readonly receipts: Receipt[] = [];
  private readonly endpoints = new Map<string, { ep: Endpoint; verifier: Webhook }>();
  private readonly server: http.Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  private nextConn = 0;
  private readonly connPid = new Map<number, number>();
  private readonly unresolved = new Map<number, Socket>();
  private resolveTimer: NodeJS.Timeout | null = null;
  private readonly sockets = new WeakMap<Socket, number>();
  /** Everything answered normally while set (the final drain). */
  calm = false;

  constructor(
    private readonly rng: Rng,
    private readonly timings: ReceiverTimings,
    /** The PIDs of the Herald processes running now (candidates for a new connection's owner). */
    private readonly heraldPids: () => number[],
  ) {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.keepAliveTimeout = 30_000;
    this.server.on("connection", (socket: Socket) => {
      const id = ++this.nextConn;
      this.sockets.set(socket, id);
      this.unresolved.set(id, socket);
      // One pass over /proc per batch of new connections (a pass costs a few ms on a busy machine).
      this.resolveTimer ??= setTimeout(() => {
        this.resolveTimer = null;
        this.resolvePids();
      }, TRACE_BATCH_MS);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(key: string): string {
    return `http://127.0.0.1:${this.port}/s/${key}`;
  }

  /** Registers an endpoint (a subscription's path and secret). */
  serve(key: string, ep: Endpoint): void {
    this.endpoints.set(key, { ep, verifier: new Webhook(ep.secret) });
  }

  /** The Herald process that opened connection `conn`, when it could be traced. */
  pidOf(conn: number): number | undefined {
    return this.connPid.get(conn);
  }

  get connections(): number {
    return this.nextConn;
  }

  get unattributedConnections(): number {
    let n = 0;
    for (let c = 1; c <= this.nextConn; c++) if (!this.connPid.has(c)) n++;
    return n;
  }

  /**
   * Maps new connections to their client process: the client end's inode from /proc/net/tcp (local port =
   * the connection's remote port, remote port = ours), then the Herald process holding that inode.
   */
  private resolvePids(): void {
    if (this.unresolved.size === 0) return;
    try {
      const byPort = new Map<number, number>();
      const ourPort = this.port;
      for (const [id, s] of this.unresolved) {
        if (s.remotePort !== undefined) byPort.set(s.remotePort, id);
      }
      const inodes = new Map<string, number>();
      for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 10) continue;
        const local = Number.parseInt(f[1]!.split(":")[1]!, 16);
        const remote = Number.parseInt(f[2]!.split(":")[1]!, 16);
        const id = byPort.get(local);
        if (id !== undefined && remote === ourPort && f[9] !== "0") inodes.set(`socket:[${f[9]}]`, id);
      }
      if (inodes.size > 0) {
        for (const pid of this.heraldPids()) {
          let fds: string[];
          try {
            fds = fs.readdirSync(`/proc/${pid}/fd`);
          } catch {
            continue;
          }
          for (const fd of fds) {
            let target: string;
            try {
              target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
            } catch {
              continue;
            }
            const id = inodes.get(target);
            if (id !== undefined) {
              this.connPid.set(id, pid);
              this.unresolved.delete(id);
            }
          }
        }
      }
    } catch {
      /* /proc unreadable: the connections stay unattributed */
    } finally {
      // One look per connection: one closed already, or of no Herald process, stays unattributed.
      this.unresolved.clear();
    }
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => this.handle(req, Buffer.concat(chunks).toString("utf8"), res));
  }

  private handle(req: http.IncomingMessage, raw: string, res: http.ServerResponse): void {
    const key = /^\/s\/([\w-]+)$/.exec(req.url ?? "")?.[1];
    const target = key === undefined ? undefined : this.endpoints.get(key);
    if (key === undefined || target === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers = {
      "webhook-id": String(req.headers["webhook-id"]),
      "webhook-timestamp": String(req.headers["webhook-timestamp"]),
      "webhook-signature": String(req.headers["webhook-signature"]),
    };
    let verified = true;
    try {
      target.verifier.verify(raw, headers);
    } catch {
      verified = false;
    }
    let seq = -1;
    try {
      seq = Number((JSON.parse(raw) as { data: { seq: number } }).data.seq);
    } catch {
      /* recorded as -1: a body the checks will flag */
    }
    const { ep } = target;
    let answer: Answer = "ok";
    if (ep.alwaysFails?.(seq)) answer = "fail";
    else if (!this.calm) {
      const x = this.rng();
      const f = ep.flaps;
      if (x < f.fail) answer = "fail";
      else if (x < f.fail + f.reset) answer = "reset";
      else if (x < f.fail + f.reset + f.hang) answer = "hang";
      else if (x < f.fail + f.reset + f.hang + f.slow) answer = "slow";
    }
    const receipt: Receipt = {
      key,
      webhookId: headers["webhook-id"],
      seq,
      sentAt: Number(headers["webhook-timestamp"]),
      at: Date.now(),
      answer,
      okSent: false,
      answeredAt: 0,
      verified,
      conn: this.sockets.get(req.socket) ?? 0,
    };
    this.receipts.push(receipt);
    const reply = (status: number) => {
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(status === 200 ? "ok" : "no");
      receipt.answeredAt = Date.now();
      if (status === 200) receipt.okSent = true;
    };
    switch (answer) {
      case "ok":
        reply(200);
        return;
      case "fail":
        reply(500);
        return;
      case "reset":
        // After the next /proc pass, so that the connection is traced to its process first.
        this.later(RESET_AFTER_MS, () => req.socket.destroy());
        return;
      case "hang":
        this.later(this.timings.hangMs, () => req.socket.destroy());
        return;
      case "slow":
        this.later(this.rng.between(this.timings.slowMinMs, this.timings.slowMaxMs), () => reply(200));
        return;
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  async close(): Promise<void> {
    if (this.resolveTimer) clearTimeout(this.resolveTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
