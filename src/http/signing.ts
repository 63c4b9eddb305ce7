/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): `webhook-id`,
 * `webhook-timestamp` (Unix seconds) and `webhook-signature` — `v1,<base64 HMAC-SHA256 of
 * "<id>.<timestamp>.<body>">` per secret, space separated, so during a rotation a receiver that
 * knows either secret accepts the request.
 */
import { createHmac, randomBytes } from "node:crypto";

export const SECRET_PREFIX = "whsec_";
/** Random bytes in a generated secret (the spec asks for 24 to 64). */
export const SECRET_BYTES = 32;
export const USER_AGENT = "Herald-Webhooks/0.1";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A new signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString("base64")}`;
}

/**
 * The HMAC key of a secret: the base64 after the optional `whsec_` prefix. Throws on a secret that
 * is not valid base64 or decodes to nothing.
 */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (encoded === "" || !BASE64.test(encoded)) {
    throw new Error("signing secret must be whsec_ followed by base64");
  }
  return Buffer.from(encoded, "base64");
}

/** True when {@link secretKey} accepts `secret`. */
export function isValidSecret(secret: string): boolean {
  try {
    return secretKey(secret).length > 0;
  } catch {
    return false;
  }
}

export interface SignInput {
  webhookId: string;
  /** Unix time in seconds (fractions are dropped). */
  timestampSeconds: number;
  /** The exact bytes that will be POSTed. */
  body: string;
  /** One secret, or two during a rotation; duplicates are signed once. */
  secrets: readonly string[];
}

/** The `webhook-signature` header value: `v1,<sig>` per secret, space separated. */
export function sign({ webhookId, timestampSeconds, body, secrets }: SignInput): string {
  if (secrets.length === 0) throw new Error("at least one signing secret is required");
  const timestamp = Math.floor(timestampSeconds);
  const signed = `${webhookId}.${timestamp}.${body}`;
  const signatures: string[] = [];
  for (const secret of new Set(secrets)) {
    const digest = createHmac("sha256", secretKey(secret)).update(signed, "utf8").digest("base64");
    signatures.push(`v1,${digest}`);
  }
  return signatures.join(" ");
}

export interface WebhookHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
  "content-type": "application/json";
  "user-agent": string;
  [name: string]: string;
}

/** Every header Herald sends with a webhook, signature included. */
export function buildWebhookHeaders(input: SignInput): WebhookHeaders {
  return {
    "webhook-id": input.webhookId,
    "webhook-timestamp": String(Math.floor(input.timestampSeconds)),
    "webhook-signature": sign(input),
    "content-type": "application/json",
    "user-agent": USER_AGENT,
  };
}

export interface BodyInput {
  /** The event type, e.g. `contract.executed`. */
  type: string;
  timestamp: Date;
  /** The event's JSON payload (`undefined` is sent as `null`). */
  data: unknown;
}

/** The Standard Webhooks payload: `{"type":…,"timestamp":"<ISO 8601>","data":…}`. */
export function buildBody({ type, timestamp, data }: BodyInput): string {
  return JSON.stringify({ type, timestamp: timestamp.toISOString(), data: data ?? null });
}
