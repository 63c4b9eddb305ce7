import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  webhookId: string;
  timestamp: string;
  signature: string;
  rawBody: string;
  body: { type: string; timestamp: string; data: unknown };
  verified: boolean;
  path: string;
  at: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Decides the answer to one request; may hold it (return a promise) to simulate a slow consumer. */
export type Behaviour = (r: Received, index: number) => Reply | Promise<Reply>;

/**
 * A webhook consumer on 127.0.0.1 that verifies every request with the `standardwebhooks` package and
 * records what it got, how many requests were open at once, and the most ever open.
 */
export class Receiver {
  readonly received: Received[] = [];
  open = 0;
  maxOpen = 0;
  private server: http.Server;
  private secrets: string[] = [];
  behaviour: Behaviour = () => ({ status: 200 });
  private waiters: Array<() => void> = [];

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        void this.handle(req, Buffer.concat(chunks).toString("utf8"), res);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = "/hook"): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Secrets the receiver verifies with (any one of them may match). */
  trust(secret: string): void {
    this.secrets.push(secret);
  }

  private verify(headers: http.IncomingHttpHeaders, raw: string): boolean {
    for (const s of this.secrets) {
      try {
        new Webhook(s).verify(raw, {
          "webhook-id": String(headers["webhook-id"]),
          "webhook-timestamp": String(headers["webhook-timestamp"]),
          "webhook-signature": String(headers["webhook-signature"]),
        });
        return true;
      } catch {
        /* try the next secret */
      }
    }
    return false;
  }

  private async handle(req: http.IncomingMessage, raw: string, res: http.ServerResponse): Promise<void> {
    this.open += 1;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    let parsed: Received["body"];
    try {
      parsed = JSON.parse(raw) as Received["body"];
    } catch {
      parsed = { type: "", timestamp: "", data: null };
    }
    const r: Received = {
      webhookId: String(req.headers["webhook-id"]),
      timestamp: String(req.headers["webhook-timestamp"]),
      signature: String(req.headers["webhook-signature"]),
      rawBody: raw,
      body: parsed,
      verified: this.verify(req.headers, raw),
      path: req.url ?? "",
      at: Date.now(),
    };
    const index = this.received.length;
    this.received.push(r);
    this.notify();
    let reply: Reply;
    try {
      reply = await this.behaviour(r, index);
    } catch {
      reply = { status: 500 };
    }
    this.open -= 1;
    if (res.destroyed) return;
    res.writeHead(reply.status, { "content-type": "text/plain", ...(reply.headers ?? {}) });
    res.end(reply.body ?? "ok");
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `cond` holds, checked on every request; rejects after the deadline. */
  async waitFor(cond: (r: Received[]) => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond(this.received)) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`receiver: timed out waiting for ${what} (got ${this.received.length} requests)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Polls `check` until it returns a value (not undefined/false), or throws after the deadline. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, Math.min(200, 10 * 2 ** Math.min(i, 5))));
  }
}

/** A gate a receiver behaviour can wait on, opened by the test. */
export class Gate {
  private resolveOpen: (() => void) | null = null;
  readonly opened: Promise<void>;
  constructor() {
    this.opened = new Promise<void>((r) => {
      this.resolveOpen = r;
    });
  }
  open(): void {
    this.resolveOpen?.();
  }
}
