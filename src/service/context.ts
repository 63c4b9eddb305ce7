import type { Logger } from "pino";
import type { Settings } from "../config.ts";
import type { Db } from "../store/db.ts";
import type { SecretBox } from "../store/secret-box.ts";

/** Who acts: the admin token, a tenant-scoped token, or Herald itself. */
export type Actor =
  | { kind: "admin" }
  | { kind: "tenant"; tenantId: string; tokenId: string }
  | { kind: "system" };

export function actorName(a: Actor): string {
  if (a.kind === "tenant") return `token:${a.tokenId}`;
  return a.kind;
}

/** The tenant an actor is confined to; null for the admin and the system. */
export function tenantScope(a: Actor): string | null {
  return a.kind === "tenant" ? a.tenantId : null;
}

export type SubscriptionChange = "paused" | "resumed" | "updated" | "deleted";

/** Things that happen after a commit: push drains and control messages. Wired by the process. */
export interface ServiceHooks {
  /** Events were queued for these subscriptions (called after the transaction committed). */
  queued(subscriptionIds: readonly string[]): void;
  /** A subscription changed in a way dispatchers must know (called after commit). */
  subscriptionChanged(subscriptionId: string, change: SubscriptionChange): void;
  /** A re-trigger job was created or resumed (called after commit): wake this process's runner, if any. */
  retriggerQueued?(): void;
}

export const NO_HOOKS: ServiceHooks = { queued() {}, subscriptionChanged() {} };

export interface ServiceContext {
  db: Db;
  settings: Settings;
  log: Logger;
  hooks: ServiceHooks;
  /** Seals a signing secret before it is stored (src/store/secret-box.ts). */
  secrets: SecretBox;
}
