import type { LookupAddress } from "node:dns";
import type { Socket } from "node:net";
import net from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CATALOG } from "../../src/domain/error-kind.ts";
import { createGuardedConnector, createSender, type Sender, type SendResult } from "../../src/http/sender.ts";
import { buildBody, buildWebhookHeaders, generateSecret } from "../../src/http/signing.ts";
import {
  closedPort,
  makeSelfSignedCert,
  startServer,
  startSilentTcpServer,
  type TestCert,
  type TestServer,
} from "./helpers.ts";

/** The time limit of the tests that expect a timeout. */
const TIMEOUT_MS = 300;
/** The time limit everywhere else: generous, so a loaded machine cannot turn a success into a timeout. */
const GENEROUS_MS = 10_000;
const BODY = JSON.stringify({ type: "contract.executed", timestamp: "2024-01-01T00:00:00.000Z", data: {} });
const HEADERS = { "content-type": "application/json" };

const cleanups: Array<() => Promise<void>> = [];

function track<T extends { close(): Promise<void> }>(resource: T): T {
  cleanups.push(() => resource.close());
  return resource;
}

afterEach(async () => {
  for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) await cleanup();
});

function sender(overrides: Partial<Parameters<typeof createSender>[0]> = {}): Sender {
  return track(createSender({ timeoutMs: GENEROUS_MS, allowPrivate: true, ...overrides }));
}

async function server(...args: Parameters<typeof startServer>): Promise<TestServer> {
  return track(await startServer(...args));
}

function failure(result: SendResult): Extract<SendResult, { ok: false }> {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

function notFound(hostname: string): Error {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
    code: "ENOTFOUND",
    syscall: "getaddrinfo",
    hostname,
  });
}

/** A resolver that knows only `names`. */
function fakeDns(names: Record<string, string[]>) {
  return async (hostname: string): Promise<LookupAddress[]> => {
    const addresses = names[hostname];
    if (addresses === undefined) throw notFound(hostname);
    return addresses.map((address) => ({ address, family: net.isIP(address) }));
  };
}

describe("sender: answers", () => {
  it("200 → ok with status, body and latency", async () => {
    const srv = await server((_req, res) => res.end("thanks"));
    const result = await sender().send({ url: `${srv.origin}/hook?x=1`, headers: HEADERS, body: BODY });
    expect(result).toMatchObject({ ok: true, status: 200, responseBody: "thanks" });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(srv.requests).toHaveLength(1);
    expect(srv.requests[0]).toMatchObject({ method: "POST", url: "/hook?x=1", body: BODY });
    expect(srv.requests[0]?.headers["content-type"]).toBe("application/json");
  });

  it("any 2xx is a success (204 with an empty body)", async () => {
    const srv = await server((_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    const result = await sender().send({ url: srv.origin, headers: HEADERS, body: BODY });
    expect(result).toEqual({ ok: true, status: 204, latencyMs: result.latencyMs, responseBody: "" });
  });

  it("404 → kind 4xx, status and body kept, no Retry-After", async () => {
    const srv = await server((_req, res) => {
      res.statusCode = 404;
      res.end("no such hook");
    });
    const result = failure(await sender().send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({
      kind: "4xx",
      status: 404,
      responseBody: "no such hook",
      retryAfterMs: null,
      mayHaveBeenSent: true,
    });
    expect(result.detail).toBe(`${ERROR_CATALOG.http_4xx}: HTTP 404`);
  });

  it("503 with Retry-After: 7 → kind 5xx, retryAfterMs 7000", async () => {
    const srv = await server((_req, res) => {
      res.writeHead(503, { "retry-after": "7" });
      res.end("busy");
    });
    const result = failure(await sender().send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "5xx", status: 503, retryAfterMs: 7000, responseBody: "busy" });
    expect(result.detail).toBe(`${ERROR_CATALOG.http_5xx}: HTTP 503`);
  });

  it("429 with an HTTP-date Retry-After → ms until that date on the sender's clock", async () => {
    const srv = await server((_req, res) => {
      res.writeHead(429, { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" });
      res.end();
    });
    const now = () => Date.UTC(2015, 9, 21, 7, 27, 30);
    const result = failure(await sender({ now }).send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "4xx", status: 429, retryAfterMs: 30_000 });
  });

  it("a malformed Retry-After is ignored", async () => {
    const srv = await server((_req, res) => {
      res.writeHead(503, { "retry-after": "soon" });
      res.end();
    });
    const result = failure(await sender().send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result.retryAfterMs).toBeNull();
  });

  it("302 → not followed: kind 4xx naming the redirect, the target is never requested", async () => {
    const srv = await server((req, res) => {
      if (req.url === "/target") {
        res.end("should not be reached");
        return;
      }
      res.writeHead(302, { location: "/target" });
      res.end();
    });
    const result = failure(await sender().send({ url: `${srv.origin}/hook`, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "4xx", status: 302, mayHaveBeenSent: true });
    expect(result.detail).toBe(`${ERROR_CATALOG.redirect_not_followed}: HTTP 302 to /target`);
    expect(srv.requests.map((r) => r.url)).toEqual(["/hook"]);
  });

  it("pools keep-alive connections per origin (one connection allowed → one used)", async () => {
    const srv = await server((_req, res) => res.end("ok"));
    const s = sender({ connectionsPerOrigin: 1 });
    for (let i = 0; i < 3; i++) {
      expect((await s.send({ url: srv.origin, headers: HEADERS, body: BODY })).ok).toBe(true);
    }
    expect(srv.requests).toHaveLength(3);
    expect(srv.connections).toBe(1);
  });

  it("delivers a request that a Standard Webhooks verifier accepts, with both secrets of a rotation", async () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const verdicts: string[] = [];
    const srv = await server((req, res) => {
      const headers = req.headers as Record<string, string>;
      for (const secret of [oldSecret, newSecret]) {
        try {
          new Webhook(secret).verify(req.body, headers);
          verdicts.push("ok");
        } catch (err) {
          verdicts.push(String(err));
        }
      }
      res.statusCode = verdicts.every((v) => v === "ok") ? 204 : 401;
      res.end();
    });
    const body = buildBody({ type: "contract.executed", timestamp: new Date(), data: { id: "c_1", n: 1 } });
    const headers = buildWebhookHeaders({
      webhookId: "msg_2f1e",
      timestampSeconds: Date.now() / 1000,
      body,
      secrets: [oldSecret, newSecret],
    });
    const result = await sender().send({ url: `${srv.origin}/webhooks`, headers, body });
    expect(verdicts).toEqual(["ok", "ok"]);
    expect(result).toMatchObject({ ok: true, status: 204 });
    const got = srv.requests[0]?.headers;
    expect(got?.["webhook-id"]).toBe("msg_2f1e");
    expect(got?.["user-agent"]).toBe("Herald-Webhooks/0.1");
    expect(got?.["content-type"]).toBe("application/json");
  });
});

describe("sender: response size", () => {
  it("a 2 MiB answer → response_too_large, the first keptResponseBytes kept", async () => {
    const chunk = Buffer.alloc(64 * 1024, "a");
    const srv = await server((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" }); // chunked: no content-length
      for (let i = 0; i < 32; i++) res.write(chunk);
      res.end();
    });
    const result = failure(await sender().send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "response_too_large", status: 200, mayHaveBeenSent: true });
    expect(result.responseBody).toBe("a".repeat(4096));
    expect(result.detail).toBe(`${ERROR_CATALOG.response_too_large}: more than 262144 bytes (HTTP 200)`);
  });

  it("a declared content-length above the cap is refused before reading the body", async () => {
    const srv = await server((_req, res) => {
      res.writeHead(200, { "content-length": String(2 * 1024 * 1024) });
      res.write("x".repeat(10));
      // never finishes: the client must give up on the header alone
      res.on("close", () => {});
    });
    const result = failure(await sender().send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result.kind).toBe("response_too_large");
    expect(result.detail).toContain("content-length 2097152");
  });

  it("exactly maxResponseBytes is fine, one byte more is too large", async () => {
    let size = 0;
    const srv = await server((_req, res) => {
      res.write("b".repeat(size)); // chunked encoding: the size is only known by counting
      res.end();
    });
    const s = sender({ maxResponseBytes: 1000, keptResponseBytes: 10 });
    size = 1000;
    const atCap = await s.send({ url: srv.origin, headers: HEADERS, body: BODY });
    expect(atCap).toMatchObject({ ok: true, status: 200, responseBody: "b".repeat(10) });
    size = 1001;
    const over = failure(await s.send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(over).toMatchObject({ kind: "response_too_large", status: 200, responseBody: "b".repeat(10) });
  });

  it("a too-large error answer keeps its status and Retry-After", async () => {
    const srv = await server((_req, res) => {
      res.writeHead(503, { "retry-after": "3" });
      res.end("e".repeat(2000));
    });
    const s = sender({ maxResponseBytes: 1000 });
    const result = failure(await s.send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "response_too_large", status: 503, retryAfterMs: 3000 });
  });
});

describe("sender: network failures", () => {
  it("closed port → kind connection, provably not sent", async () => {
    const port = await closedPort();
    const result = failure(
      await sender().send({ url: `http://127.0.0.1:${port}/hook`, headers: HEADERS, body: BODY }),
    );
    expect(result).toMatchObject({
      kind: "connection",
      status: null,
      responseBody: null,
      retryAfterMs: null,
      mayHaveBeenSent: false,
    });
    expect(result.detail.startsWith(ERROR_CATALOG.connection_refused)).toBe(true);
    expect(result.detail).toContain("ECONNREFUSED");
  });

  it("receiver closes the connection after reading the request → kind connection, may have been sent", async () => {
    const srv = await server((_req, res) => {
      res.socket?.destroy();
    });
    const result = failure(await sender().send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "connection", status: null, mayHaveBeenSent: true });
    expect(srv.requests).toHaveLength(1);
  });

  it("unknown host → kind dns, provably not sent", async () => {
    const s = sender({ lookup: fakeDns({}) });
    const result = failure(await s.send({ url: "http://nowhere.test/hook", headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "dns", mayHaveBeenSent: false, status: null });
    expect(result.detail).toBe(`${ERROR_CATALOG.dns_not_found}: getaddrinfo ENOTFOUND nowhere.test`);
  });

  it("an invalid URL → kind unknown naming the url field, provably not sent", async () => {
    const result = failure(await sender().send({ url: "ftp://example.com/x", headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "unknown", mayHaveBeenSent: false });
    expect(result.detail).toBe(`${ERROR_CATALOG.invalid_url}: url must use http or https`);
  });

  it("a header undici refuses → a failure, not an exception", async () => {
    const srv = await server((_req, res) => res.end());
    const result = failure(
      await sender().send({ url: srv.origin, headers: { "x-bad": "a\r\nb" }, body: BODY }),
    );
    expect(result).toMatchObject({ kind: "unknown", mayHaveBeenSent: false });
    expect(srv.connections).toBe(0);
  });

  it("after close() → a failure, not an exception", async () => {
    const s = createSender({ timeoutMs: GENEROUS_MS, allowPrivate: true });
    await s.close();
    const result = failure(await s.send({ url: "http://127.0.0.1:1/", headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "unknown", mayHaveBeenSent: false });
  });
});

describe("sender: timeouts", () => {
  it("a receiver that does not answer within timeoutMs → kind timeout, the request was sent", async () => {
    let clientGone!: () => void;
    const gone = new Promise<void>((resolve) => {
      clientGone = resolve;
    });
    const srv = await server((_req, res) => {
      // Hold the answer until the client gives up and closes the socket.
      res.on("close", () => clientGone());
    });
    const result = failure(
      await sender({ timeoutMs: TIMEOUT_MS }).send({ url: srv.origin, headers: HEADERS, body: BODY }),
    );
    expect(result).toMatchObject({
      kind: "timeout",
      status: null,
      responseBody: null,
      mayHaveBeenSent: true,
    });
    expect(result.detail).toBe(`${ERROR_CATALOG.timeout_response}: no answer within ${TIMEOUT_MS} ms`);
    await gone; // the sender aborted the request and closed the connection
    expect(srv.requests).toHaveLength(1);
  });

  it("headers in time but a body that never ends → kind timeout with the status", async () => {
    let clientGone!: () => void;
    const gone = new Promise<void>((resolve) => {
      clientGone = resolve;
    });
    const srv = await server((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("partial");
      res.on("close", () => clientGone());
    });
    const result = failure(
      await sender({ timeoutMs: TIMEOUT_MS }).send({ url: srv.origin, headers: HEADERS, body: BODY }),
    );
    expect(result).toMatchObject({ kind: "timeout", status: 200, mayHaveBeenSent: true });
    await gone;
  });

  it("a request still queued for a connection at its time limit is never written", async () => {
    const srv = await server(() => {
      // Hold the first request: the sender's only connection stays busy.
    });
    const s = sender({ timeoutMs: 1000, connectionsPerOrigin: 1 });
    // Both requests start in the same tick, so both time limits expire in the same timer run.
    const first = s.send({ url: `${srv.origin}/first`, headers: HEADERS, body: BODY });
    const second = s.send({ url: `${srv.origin}/second`, headers: HEADERS, body: BODY });
    const [a, b] = [failure(await first), failure(await second)];
    expect(a).toMatchObject({ kind: "timeout", mayHaveBeenSent: true });
    expect(b).toMatchObject({ kind: "timeout", mayHaveBeenSent: false });
    expect(b.detail.startsWith(ERROR_CATALOG.timeout_connect)).toBe(true);
    // close() resolves once undici has dispatched (and we aborted) the queued request.
    await s.close();
    expect(srv.headersReceived).toBe(1);
    expect(srv.requests.map((r) => r.url)).toEqual(["/first"]);
  });

  it("a TLS handshake that never completes → kind timeout, provably not sent", async () => {
    const silent = track(await startSilentTcpServer());
    const result = failure(
      await sender({ timeoutMs: TIMEOUT_MS }).send({
        url: `https://127.0.0.1:${silent.port}/`,
        headers: HEADERS,
        body: BODY,
      }),
    );
    expect(result).toMatchObject({ kind: "timeout", status: null, mayHaveBeenSent: false });
    expect(result.detail.startsWith(ERROR_CATALOG.timeout_connect)).toBe(true);
    expect(silent.connections()).toBe(1);
  });
});

describe("sender: TLS", () => {
  let selfSigned: TestCert;
  let wrongName: TestCert;

  beforeAll(() => {
    selfSigned = makeSelfSignedCert("DNS:localhost,IP:127.0.0.1");
    wrongName = makeSelfSignedCert("DNS:other.example");
  });

  it("a self-signed certificate → kind tls, provably not sent", async () => {
    const srv = await server((_req, res) => res.end("ok"), selfSigned);
    const result = failure(await sender().send({ url: `${srv.origin}/hook`, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "tls", status: null, mayHaveBeenSent: false });
    expect(result.detail.startsWith(ERROR_CATALOG.tls_cert_invalid)).toBe(true);
    expect(result.detail).toContain("DEPTH_ZERO_SELF_SIGNED_CERT");
    expect(srv.headersReceived).toBe(0);
  });

  it("the same certificate, trusted → 200 over https", async () => {
    const srv = await server((_req, res) => res.end("secure"), selfSigned);
    const s = sender({ ca: selfSigned.cert });
    const result = await s.send({ url: `${srv.origin}/hook`, headers: HEADERS, body: BODY });
    expect(result).toMatchObject({ ok: true, status: 200, responseBody: "secure" });
  });

  it("a trusted certificate for another name → kind tls (name mismatch)", async () => {
    const srv = await server((_req, res) => res.end("ok"), wrongName);
    const s = sender({ ca: wrongName.cert });
    const result = failure(await s.send({ url: srv.origin, headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "tls", mayHaveBeenSent: false });
    expect(result.detail).toContain("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(srv.headersReceived).toBe(0);
  });

  it("https to a plain-http server → kind tls (handshake)", async () => {
    const srv = await server((_req, res) => res.end("ok"));
    const result = failure(
      await sender().send({ url: srv.origin.replace("http:", "https:"), headers: HEADERS, body: BODY }),
    );
    expect(result).toMatchObject({ kind: "tls", mayHaveBeenSent: false });
    expect(result.detail.startsWith(ERROR_CATALOG.tls_handshake)).toBe(true);
    expect(srv.headersReceived).toBe(0);
  });
});

describe("sender: SSRF guard", () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startServer((_req, res) => res.end("reached"));
  });

  afterAll(async () => {
    await srv.close();
  });

  it("a host name that resolves to 127.0.0.1 (DNS rebinding) → ssrf_blocked, nothing reaches the server", async () => {
    const before = srv.connections;
    const s = sender({ allowPrivate: false, lookup: fakeDns({ "rebind.test": ["127.0.0.1"] }) });
    const result = failure(
      await s.send({ url: `http://rebind.test:${srv.port}/hook`, headers: HEADERS, body: BODY }),
    );
    expect(result).toMatchObject({ kind: "ssrf_blocked", status: null, mayHaveBeenSent: false });
    expect(result.detail).toBe(`${ERROR_CATALOG.ssrf_private_address}: rebind.test resolved to 127.0.0.1`);
    expect(srv.connections).toBe(before);
  });

  it("one private address among public ones is enough to refuse", async () => {
    const before = srv.connections;
    const lookup = fakeDns({ "mixed.test": ["93.184.216.34", "2606:2800:220:1::1", "::ffff:10.0.0.1"] });
    const s = sender({ allowPrivate: false, lookup });
    const result = failure(
      await s.send({ url: `http://mixed.test:${srv.port}/`, headers: HEADERS, body: BODY }),
    );
    expect(result).toMatchObject({ kind: "ssrf_blocked", mayHaveBeenSent: false });
    expect(result.detail).toContain("::ffff:10.0.0.1");
    expect(srv.connections).toBe(before);
  });

  it("with allowPrivate the same name is resolved through the lookup and delivered", async () => {
    const s = sender({ allowPrivate: true, lookup: fakeDns({ "rebind.test": ["127.0.0.1"] }) });
    const result = await s.send({ url: `http://rebind.test:${srv.port}/hook`, headers: HEADERS, body: BODY });
    expect(result).toMatchObject({ ok: true, status: 200, responseBody: "reached" });
    expect(srv.requests.at(-1)?.headers.host).toBe(`rebind.test:${srv.port}`);
  });

  it.each([
    ["localhost", (port: number) => `http://localhost:${port}/hook`],
    ["127.0.0.1", (port: number) => `http://127.0.0.1:${port}/hook`],
    ["[::ffff:127.0.0.1]", (port: number) => `http://[::ffff:127.0.0.1]:${port}/hook`],
    ["2130706433 (decimal 127.0.0.1)", (port: number) => `http://2130706433:${port}/hook`],
  ])("%s → ssrf_blocked without connecting", async (_name, makeUrl) => {
    const before = srv.connections;
    const s = sender({ allowPrivate: false });
    const result = failure(await s.send({ url: makeUrl(srv.port), headers: HEADERS, body: BODY }));
    expect(result).toMatchObject({ kind: "ssrf_blocked", mayHaveBeenSent: false });
    expect(srv.connections).toBe(before);
  });

  it("the connect-time guard refuses a literal private address even past the URL check", async () => {
    const before = srv.connections;
    const connect = createGuardedConnector({ allowPrivate: false, timeoutMs: GENEROUS_MS });
    const outcome = await new Promise<{ err: Error | null; socket: Socket | null }>((resolve) => {
      connect({ hostname: "127.0.0.1", protocol: "http:", port: String(srv.port) }, (err, socket) =>
        resolve({ err, socket: socket as Socket | null }),
      );
    });
    expect(outcome.socket).toBeNull();
    expect((outcome.err as Error & { code?: string }).code).toBe("HERALD_SSRF_BLOCKED");
    expect(srv.connections).toBe(before);
  });

  it("the connect-time guard lets a private address through when allowed", async () => {
    const connect = createGuardedConnector({ allowPrivate: true, timeoutMs: GENEROUS_MS });
    const socket = await new Promise<Socket>((resolve, reject) => {
      connect({ hostname: "127.0.0.1", protocol: "http:", port: String(srv.port) }, (err, s) =>
        err === null ? resolve(s as Socket) : reject(err),
      );
    });
    expect(socket.remoteAddress).toBe("127.0.0.1");
    socket.destroy();
  });
});
