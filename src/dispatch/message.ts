import type { SendRequest } from "../http/sender.ts";
import { buildBody, buildWebhookHeaders } from "../http/signing.ts";
import type { ClaimedDelivery } from "../store/claim.ts";

/** Opens a stored (sealed) secret: SecretBox, which caches what it opened by stored value. */
export interface SecretOpener {
  open(stored: string): string;
}

/**
 * The signing secrets in force for a delivery, opened: the current one, plus the previous during a
 * rotation.
 */
export function activeSecrets(d: ClaimedDelivery, now: Date, secrets: SecretOpener): string[] {
  const active = [secrets.open(d.secret)];
  if (d.previous_secret && d.previous_secret_expires_at && d.previous_secret_expires_at > now) {
    active.push(secrets.open(d.previous_secret));
  }
  return active;
}

/** The signed POST for one claimed delivery (Standard Webhooks headers, `{type, timestamp, data}` body). */
export function buildRequest(d: ClaimedDelivery, secrets: SecretOpener, now = new Date()): SendRequest {
  const body = buildBody({ type: d.event_type, timestamp: d.occurred_at, data: d.payload });
  const headers = buildWebhookHeaders({
    webhookId: d.webhook_id,
    timestampSeconds: Math.floor(now.getTime() / 1000),
    body,
    secrets: activeSecrets(d, now, secrets),
  });
  return { url: d.url, headers: { ...headers }, body };
}
