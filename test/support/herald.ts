import pino from "pino";
import { type Settings, testSettings } from "../../src/config.ts";
import { type HeraldProcess, type Roles, startHerald } from "../../src/runtime/herald.ts";
import { createTestStore, type StoreKind, type TestStore } from "./store.ts";

export const ADMIN = "test-admin-token-0123456789-abcdefgh";

export interface TestHerald {
  proc: HeraldProcess;
  store: TestStore;
  url: string;
  /** JSON call with a bearer token (admin unless given). */
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/** Starts Herald in this process on a fresh store, listening on a free loopback port. */
export async function startTestHerald(
  kind: StoreKind,
  overrides: Partial<Settings> = {},
  roles: Roles = { api: true, dispatcher: false },
  /** Share another test Herald's store (a second process on the same database); not disposed by close(). */
  shared?: TestStore,
): Promise<TestHerald> {
  const own = shared === undefined;
  const store = shared
    ? { ...shared, db: (await shared.connectAgain()) ?? shared.db, dispose: async () => {} }
    : await createTestStore(kind);
  const settings = testSettings({
    port: 0,
    host: "127.0.0.1",
    adminToken: ADMIN,
    allowPrivateTargets: true,
    ...overrides,
  });
  const proc = await startHerald(settings, {
    roles,
    db: store.db,
    migrate: false,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
  });
  const url = proc.url ?? "";
  return {
    proc,
    store,
    url,
    async api<T>(
      method: string,
      path: string,
      body?: unknown,
      token = ADMIN,
      headers: Record<string, string> = {},
    ) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
    },
    async close() {
      await proc.stop();
      if (own) await store.dispose();
    },
  };
}
