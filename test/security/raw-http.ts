import net from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `request` byte for byte on a new connection (no client-side URL normalisation, as
 * `curl --path-as-is` would) and parses the one answer, read until the server closes the connection.
 */
export function rawHttp(url: string, request: string, timeoutMs = 10_000): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname, () => socket.write(request));
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(data.slice(0, 200))}`),
      );
    }, timeoutMs);
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      data += d;
    });
    // The server may reset the connection after answering (it refused the rest of the request).
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      const split = data.indexOf("\r\n\r\n");
      const head = split < 0 ? data : data.slice(0, split);
      const [statusLine = "", ...lines] = head.split("\r\n");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(":");
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: split < 0 ? "" : data.slice(split + 4) });
    });
  });
}

/** A GET (or another method without a body) with `Connection: close`, the path sent exactly as given. */
export function rawRequest(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawResponse> {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${new URL(url).host}`, "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== undefined) {
    lines.push("Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`);
  }
  return rawHttp(url, `${lines.join("\r\n")}\r\n\r\n${body ?? ""}`);
}
