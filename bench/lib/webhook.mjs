/**
 * What the competitors (BullMQ, pg-boss) send: the same Standard Webhooks message Herald sends
 * (`{type, timestamp, data}` body, `webhook-id`, `webhook-timestamp`, `webhook-signature` HMAC-SHA256),
 * POSTed with undici, so every competitor does the same work per delivery as Herald's sender.
 */
import { createHmac } from "node:crypto";
import { Agent } from "undici";

const SECRET = Buffer.from("herald-bench-signing-key-0123456789");

/** One webhook's body and Standard Webhooks headers (HMAC-SHA256 over `id.timestamp.body`). */
export function signedMessage(id, type, data) {
  const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data });
  return { body, headers: signatureHeaders(id, Math.floor(Date.now() / 1000), body) };
}

/** The Standard Webhooks headers of a body: HMAC-SHA256 over `id.timestamp.body`, base64. */
export function signatureHeaders(id, ts, body) {
  const sig = createHmac("sha256", SECRET).update(`${id}.${ts}.${body}`).digest("base64");
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(ts),
    "webhook-signature": `v1,${sig}`,
  };
}

export function createPoster({ timeoutMs = 15_000 } = {}) {
  const agent = new Agent({ headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 60_000 });
  return {
    /** Resolves on a 2xx answer; rejects otherwise (so the queue retries). */
    async post(url, id, type, data) {
      const { body, headers } = signedMessage(id, type, data);
      const u = new URL(url);
      const res = await agent.request({
        origin: u.origin,
        path: u.pathname,
        method: "POST",
        headers,
        body,
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`HTTP ${res.statusCode}`);
    },
    close: () => agent.close(),
  };
}
