/** Loopback servers and throw-away certificates for the sender tests. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Handler = (req: ReceivedRequest, res: http.ServerResponse, raw: http.IncomingMessage) => void;

export interface TestServer {
  port: number;
  /** `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`. */
  origin: string;
  /** TCP connections accepted so far. */
  connections: number;
  /** Requests whose headers arrived (counted before the body is read). */
  headersReceived: number;
  /** Requests whose body has been read completely. */
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** An HTTP(S) server on 127.0.0.1, port 0, that reads each body before calling `handler`. */
export async function startServer(
  handler: Handler,
  tls?: { key: string | Buffer; cert: string | Buffer },
): Promise<TestServer> {
  const state = { connections: 0, headersReceived: 0, requests: [] as ReceivedRequest[] };
  const listener = (raw: http.IncomingMessage, res: http.ServerResponse): void => {
    state.headersReceived += 1;
    const chunks: Buffer[] = [];
    raw.on("data", (chunk: Buffer) => chunks.push(chunk));
    raw.on("end", () => {
      const received: ReceivedRequest = {
        method: raw.method ?? "",
        url: raw.url ?? "",
        headers: raw.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      state.requests.push(received);
      handler(received, res, raw);
    });
  };
  const server: http.Server | https.Server =
    tls === undefined ? http.createServer(listener) : https.createServer(tls, listener);
  // Counts TCP connections (for HTTPS: before any TLS handshake).
  server.on("connection", () => {
    state.connections += 1;
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    get headersReceived() {
      return state.headersReceived;
    },
    requests: state.requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A raw TCP server that accepts connections and never writes a byte. */
export async function startSilentTcpServer(): Promise<{
  port: number;
  connections: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = net.createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TestCert {
  key: string;
  cert: string;
}

/** A self-signed certificate (also usable as its own CA) made with the `openssl` CLI. */
export function makeSelfSignedCert(subjectAltName: string, commonName = "herald-test"): TestCert {
  const dir = mkdtempSync(join(tmpdir(), "herald-cert-"));
  try {
    const keyPath = join(dir, "key.pem");
    const certPath = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        keyPath,
        "-out",
        certPath,
        "-days",
        "2",
        "-subj",
        `/CN=${commonName}`,
        "-addext",
        `subjectAltName=${subjectAltName}`,
      ],
      { stdio: "ignore" },
    );
    return { key: readFileSync(keyPath, "utf8"), cert: readFileSync(certPath, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
