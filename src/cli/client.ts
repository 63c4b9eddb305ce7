import { readStoredAdminToken } from "../admin-token.ts";

/** Where the CLI's operator verbs reach the API, and with which token. */
export interface ClientOptions {
  url?: string | undefined;
  token?: string | undefined;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function resolveClient(opts: ClientOptions, env = process.env): { url: string; token: string } {
  const url =
    opts.url ?? env.HERALD_URL ?? `http://${env.HERALD_HOST ?? "127.0.0.1"}:${env.HERALD_PORT ?? "8080"}`;
  const token =
    opts.token ??
    env.HERALD_TOKEN ??
    env.HERALD_ADMIN_TOKEN ??
    readStoredAdminToken(env.HERALD_DATA_DIR ?? "./.herald");
  if (!token) {
    throw new Error(
      "no token: pass --token, or set HERALD_TOKEN (or HERALD_ADMIN_TOKEN, or run next to the data dir)",
    );
  }
  return { url: url.replace(/\/$/, ""), token };
}

/** One JSON call to the Herald API; a non-2xx answer becomes an ApiError with the server's message. */
export async function call<T>(
  c: { url: string; token: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${c.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${c.token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const parsed: unknown = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? "http_error", err?.message ?? `HTTP ${res.status}`);
  }
  return parsed as T;
}
