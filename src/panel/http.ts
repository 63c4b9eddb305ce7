import type { FastifyReply, FastifyRequest } from "fastify";
import { HeraldError } from "../errors.ts";
import type { Actor, ServiceContext } from "../service/context.ts";
import { safeBack } from "./forms.ts";
import type { Html } from "./html.ts";
import type { View } from "./layout.ts";

/** Everything the panel changes, it changes as the admin (the audit rows say `admin`). */
export const ADMIN: Actor = { kind: "admin" };
export const PAGE_SIZE = 50;

/** Route options of a fragment answering a polled region (an error leaves the region as it was). */
export const FRAGMENT = { config: { panelFragment: true } };

/** What the route modules need from the plugin. */
export interface PanelDeps {
  ctx: ServiceContext;
  /** The signed-in request's CSRF token and render time. */
  viewOf(req: FastifyRequest): View;
}

export function sendHtml(reply: FastifyReply, status: number, body: Html): FastifyReply {
  return reply.code(status).type("text/html; charset=utf-8").send(body.value);
}

export function isHtmx(req: FastifyRequest): boolean {
  return req.headers["hx-request"] === "true";
}

/** Where the request came from (for login's `next`), limited to panel paths. */
export function currentPath(req: FastifyRequest): string {
  const fromHtmx = req.headers["hx-current-url"];
  if (typeof fromHtmx === "string") {
    try {
      const u = new URL(fromHtmx);
      return safeBack(`${u.pathname}${u.search}`, "/webhooks");
    } catch {
      return "/webhooks";
    }
  }
  return req.method === "GET" ? safeBack(req.url, "/webhooks") : "/webhooks";
}

export function query(req: FastifyRequest): Record<string, string | undefined> {
  const q = req.query;
  const out: Record<string, string | undefined> = {};
  if (q && typeof q === "object") {
    for (const [k, v] of Object.entries(q)) {
      const s = Array.isArray(v) ? v[0] : v;
      if (typeof s === "string" && s.trim() !== "") out[k] = s.trim();
    }
  }
  return out;
}

export function param(req: FastifyRequest, name: string): string {
  const p = req.params as Record<string, string | undefined>;
  return p[name] ?? "";
}

export function isOneOf<T extends string>(v: string, options: readonly T[]): v is T {
  return (options as readonly string[]).includes(v);
}

/** A HeraldError's message, or null when the error is a bug (then it goes to the error handler). */
export function refusal(err: unknown): HeraldError | null {
  return err instanceof HeraldError && err.status < 500 ? err : null;
}
