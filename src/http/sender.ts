/**
 * The outbound sender: one POST of one webhook, with every outcome — success, HTTP failure,
 * network failure, timeout, SSRF refusal, oversized answer — returned as a {@link SendResult}.
 * `send()` never throws.
 *
 * - One undici `Agent` per sender pools keep-alive connections per origin.
 * - Redirects are never followed (a 3xx is a failure, see `classifyStatus`).
 * - The whole exchange (queueing for a connection, connecting, TLS, sending, waiting for and
 *   reading the answer) has one time limit, `timeoutMs`; reaching it gives kind `timeout`.
 * - SSRF: the URL is checked statically, then every address a host name resolves to is checked
 *   when the connection is opened (and the peer address once connected), so DNS rebinding cannot
 *   bypass the URL check.
 * - The answer is read up to `maxResponseBytes`; one byte more (or a larger `content-length`)
 *   aborts it with kind `response_too_large`, whatever the status (which is still reported). The
 *   first `keptResponseBytes` are kept for the delivery row.
 * - `mayHaveBeenSent` is false exactly when undici never started writing the request: DNS
 *   failures, refused connections, SSRF refusals, TLS handshake failures, connect timeouts,
 *   invalid URLs. It is true as soon as the request was handed to a connected socket.
 */
import type { LookupAddress } from "node:dns";
import { promises as dnsPromises } from "node:dns";
import type { IncomingHttpHeaders } from "node:http";
import type { LookupFunction, Socket } from "node:net";
import { isIP } from "node:net";
import { performance } from "node:perf_hooks";
import type { Dispatcher } from "undici";
import { Agent, buildConnector } from "undici";
import {
  type ClassifiedError,
  catalogError,
  classifyError,
  classifyStatus,
  type ErrorKind,
  HERALD_RESPONSE_TOO_LARGE,
  HERALD_SSRF_BLOCKED,
  HERALD_TIMEOUT,
} from "../domain/error-kind.ts";
import { parseRetryAfter } from "../domain/retry-schedule.ts";
import { isPrivateAddress, validateTargetUrl } from "./ssrf.ts";

export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024;
export const DEFAULT_KEPT_RESPONSE_BYTES = 4 * 1024;

/** Resolves a host name to all its addresses (like `dns.promises.lookup(name, { all: true })`). */
export type ResolveAll = (hostname: string) => Promise<LookupAddress[]>;

export interface SenderOptions {
  /** Time limit of one whole request, in ms. */
  timeoutMs: number;
  /** Allow loopback/private/reserved targets (development and tests). */
  allowPrivate: boolean;
  /** Hard cap on the bytes of a response body read; default 256 KiB. */
  maxResponseBytes?: number;
  /** How much of the response body the result keeps; default 4 KiB. */
  keptResponseBytes?: number;
  /** DNS resolution; default `dns.promises.lookup(host, { all: true })`. For tests. */
  lookup?: ResolveAll;
  /** Most connections opened to one origin at once; default unlimited. */
  connectionsPerOrigin?: number;
  /** Extra trusted certificate authorities (PEM), replacing Node's default set; for tests. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Wall clock (ms since the epoch) for `Retry-After` dates; default `Date.now`. */
  now?: () => number;
}

export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export type SendResult =
  | { ok: true; status: number; latencyMs: number; responseBody: string }
  | {
      ok: false;
      kind: ErrorKind;
      detail: string;
      /** The HTTP status when an answer arrived (also for `response_too_large` and timeouts mid-body). */
      status: number | null;
      /** The answer's `Retry-After`, as ms from now; null when absent or malformed. */
      retryAfterMs: number | null;
      latencyMs: number;
      /** The first `keptResponseBytes` of the answer, null when no answer arrived. */
      responseBody: string | null;
      /** False only when the request provably never left this process. */
      mayHaveBeenSent: boolean;
    };

export interface Sender {
  send(req: SendRequest): Promise<SendResult>;
  /** Waits for in-flight requests (each bounded by `timeoutMs`), then closes every connection. */
  close(): Promise<void>;
}

type CodedError = Error & { code: string; hostname?: string; address?: string };

function codedError(code: string, message: string, extra: Record<string, string> = {}): CodedError {
  return Object.assign(new Error(message), { code }, extra) as CodedError;
}

function ssrfError(hostname: string, address: string): CodedError {
  const message =
    hostname === address ? `address ${address} is not allowed` : `${hostname} resolved to ${address}`;
  return codedError(HERALD_SSRF_BLOCKED, message, { hostname, address });
}

/**
 * A `lookup` for `net.connect`/`tls.connect` that resolves every address of the host name and
 * refuses the connection when any of them is private (unless `allowPrivate`).
 */
export function createGuardedLookup(opts: { allowPrivate: boolean; resolve?: ResolveAll }): LookupFunction {
  const resolve: ResolveAll = opts.resolve ?? ((hostname) => dnsPromises.lookup(hostname, { all: true }));
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (found) => {
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const addresses = family === 0 ? found : found.filter((a) => a.family === family);
        const first = addresses[0];
        if (first === undefined) {
          const err = codedError("ENOTFOUND", `getaddrinfo ENOTFOUND ${hostname}`, { hostname });
          callback(Object.assign(err, { syscall: "getaddrinfo" }), "", 4);
          return;
        }
        if (!opts.allowPrivate) {
          const bad = addresses.find((a) => isPrivateAddress(a.address));
          if (bad !== undefined) {
            callback(ssrfError(hostname, bad.address), "", 4);
            return;
          }
        }
        if (options.all === true) callback(null, addresses);
        else callback(null, first.address, first.family);
      },
      (err: unknown) => {
        callback(err instanceof Error ? err : new Error(String(err)), "", 4);
      },
    );
  };
}

/**
 * undici's connector wrapped with the SSRF guard: literal private addresses are refused before
 * connecting, host names through {@link createGuardedLookup}, and the peer address of every new
 * connection is checked once more (fail closed).
 */
export function createGuardedConnector(opts: {
  allowPrivate: boolean;
  timeoutMs: number;
  resolve?: ResolveAll;
  ca?: string | Buffer | Array<string | Buffer>;
}): buildConnector.connector {
  const inner = buildConnector({
    timeout: opts.timeoutMs,
    lookup: createGuardedLookup({ allowPrivate: opts.allowPrivate, resolve: opts.resolve }),
    ...(opts.ca === undefined ? {} : { ca: opts.ca }),
  });
  return (options, callback) => {
    const host = options.hostname.startsWith("[") ? options.hostname.slice(1, -1) : options.hostname;
    if (!opts.allowPrivate && isIP(host) !== 0 && isPrivateAddress(host)) {
      callback(ssrfError(host, host), null);
      return;
    }
    inner(options, (...args) => {
      if (args[0] !== null) {
        callback(args[0], null);
        return;
      }
      const socket: Socket = args[1];
      if (!opts.allowPrivate) {
        const remote = socket.remoteAddress;
        if (remote === undefined || isPrivateAddress(remote)) {
          socket.destroy();
          callback(ssrfError(host, remote ?? "an unknown address"), null);
          return;
        }
      }
      callback(null, socket);
    });
  };
}

function firstHeader(headers: IncomingHttpHeaders | null, name: string): string | undefined {
  const value = headers?.[name];
  return Array.isArray(value) ? value[0] : value;
}

/** One POST in flight: an undici dispatch handler that settles exactly once. */
class Attempt implements Dispatcher.DispatchHandler {
  #settled = false;
  #started = false;
  #controller: Dispatcher.DispatchController | null = null;
  #status: number | null = null;
  #headers: IncomingHttpHeaders | null = null;
  #received = 0;
  #kept: Buffer[] = [];
  #keptBytes = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly cfg: {
      timeoutMs: number;
      maxResponseBytes: number;
      keptResponseBytes: number;
      startedAt: number;
      now: () => number;
      resolve: (result: SendResult) => void;
    },
  ) {
    this.#timer = setTimeout(() => this.#onTimeout(), cfg.timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#settled) {
      // Timed out while waiting for a connection: never write it.
      controller.abort(codedError(HERALD_TIMEOUT, "request abandoned after its time limit"));
      return;
    }
    this.#controller = controller;
    this.#started = true;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (this.#settled || statusCode < 200) return; // 1xx informational answers are skipped
    this.#status = statusCode;
    this.#headers = headers;
    const declared = Number(firstHeader(headers, "content-length"));
    if (Number.isFinite(declared) && declared > this.cfg.maxResponseBytes) {
      this.#tooLarge(controller, `content-length ${declared}`);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    this.#received += chunk.length;
    const room = this.cfg.keptResponseBytes - this.#keptBytes;
    if (room > 0) {
      const piece = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.#kept.push(piece);
      this.#keptBytes += piece.length;
    }
    if (this.#received > this.cfg.maxResponseBytes) {
      this.#tooLarge(controller, `more than ${this.cfg.maxResponseBytes} bytes`);
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    const status = this.#status ?? 0;
    const failure = classifyStatus(status, this.#statusSpecifics(status));
    if (failure === null) {
      this.#settle({ ok: true, status, latencyMs: this.#latency(), responseBody: this.#body() });
    } else {
      this.#fail(failure, true);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#settled) return;
    this.#fail(classifyError(err), this.#started);
  }

  /** A failure before dispatch (e.g. invalid headers rejected synchronously). */
  failEarly(err: unknown): void {
    if (this.#settled) return;
    this.#fail(classifyError(err instanceof Error ? err : new Error(String(err))), this.#started);
  }

  #onTimeout(): void {
    if (this.#settled) return;
    const key = this.#started ? "timeout_response" : "timeout_connect";
    this.#fail(catalogError(key, `no answer within ${this.cfg.timeoutMs} ms`), this.#started);
    this.#controller?.abort(codedError(HERALD_TIMEOUT, `time limit of ${this.cfg.timeoutMs} ms reached`));
  }

  #tooLarge(controller: Dispatcher.DispatchController, why: string): void {
    const status = this.#status === null ? "" : ` (HTTP ${this.#status})`;
    this.#fail(catalogError("response_too_large", `${why}${status}`), true);
    controller.abort(
      codedError(HERALD_RESPONSE_TOO_LARGE, `response body over ${this.cfg.maxResponseBytes} bytes`),
    );
  }

  #statusSpecifics(status: number): string {
    const location = firstHeader(this.#headers, "location");
    return status >= 300 && status <= 399 && location !== undefined
      ? `HTTP ${status} to ${location}`
      : `HTTP ${status}`;
  }

  #fail(error: ClassifiedError, mayHaveBeenSent: boolean): void {
    const answered = this.#status !== null;
    const retryAfter = firstHeader(this.#headers, "retry-after");
    this.#settle({
      ok: false,
      kind: error.kind,
      detail: error.detail,
      status: this.#status,
      retryAfterMs: answered ? parseRetryAfter(retryAfter, this.cfg.now()) : null,
      latencyMs: this.#latency(),
      responseBody: answered ? this.#body() : null,
      mayHaveBeenSent,
    });
  }

  #settle(result: SendResult): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.cfg.resolve(result);
  }

  #latency(): number {
    return Math.max(0, Math.round(performance.now() - this.cfg.startedAt));
  }

  #body(): string {
    return Buffer.concat(this.#kept).toString("utf8");
  }
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${name} must be a positive integer`);
  return n;
}

/** A sender with its own connection pool. Throws only on invalid options. */
export function createSender(opts: SenderOptions): Sender {
  const timeoutMs = positiveInt(opts.timeoutMs, 0, "timeoutMs");
  const maxResponseBytes = positiveInt(opts.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES, "maxResponseBytes");
  const keptResponseBytes = Math.min(
    positiveInt(opts.keptResponseBytes, DEFAULT_KEPT_RESPONSE_BYTES, "keptResponseBytes"),
    maxResponseBytes,
  );
  const now = opts.now ?? Date.now;
  const agent = new Agent({
    connect: createGuardedConnector({
      allowPrivate: opts.allowPrivate,
      timeoutMs,
      resolve: opts.lookup,
      ca: opts.ca,
    }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    ...(opts.connectionsPerOrigin === undefined
      ? {}
      : { connections: positiveInt(opts.connectionsPerOrigin, 1, "connectionsPerOrigin") }),
  });
  let closed = false;

  const refuse = (error: ClassifiedError, startedAt: number): SendResult => ({
    ok: false,
    kind: error.kind,
    detail: error.detail,
    status: null,
    retryAfterMs: null,
    latencyMs: Math.max(0, Math.round(performance.now() - startedAt)),
    responseBody: null,
    mayHaveBeenSent: false,
  });

  return {
    send(req: SendRequest): Promise<SendResult> {
      const startedAt = performance.now();
      try {
        if (closed) return Promise.resolve(refuse(catalogError("unknown", "sender is closed"), startedAt));
        const check = validateTargetUrl(req.url, { allowPrivate: opts.allowPrivate });
        if (!check.ok) {
          const key = check.reason === "private" ? "ssrf_private_address" : "invalid_url";
          return Promise.resolve(refuse(catalogError(key, check.message), startedAt));
        }
        const url = check.url;
        return new Promise<SendResult>((resolve) => {
          const attempt = new Attempt({
            timeoutMs,
            maxResponseBytes,
            keptResponseBytes,
            startedAt,
            now,
            resolve,
          });
          try {
            agent.dispatch(
              {
                origin: url.origin,
                path: `${url.pathname}${url.search}`,
                method: "POST",
                headers: req.headers,
                body: req.body,
                headersTimeout: timeoutMs,
                bodyTimeout: timeoutMs,
              },
              attempt,
            );
          } catch (err) {
            attempt.failEarly(err);
          }
        });
      } catch (err) {
        const error = classifyError(err instanceof Error ? err : new Error(String(err)));
        return Promise.resolve(refuse(error, startedAt));
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await agent.close();
    },
  };
}
