import fs from "node:fs";
import { createRequire } from "node:module";
import type { FastifyError, FastifyInstance, FastifyRequest } from "fastify";
import { LoginLimit } from "../domain/login-limit.ts";
import { HeraldError } from "../errors.ts";
import type { ServiceContext } from "../service/context.ts";
import { PanelAuth, readCookie, SESSION_COOKIE, type Session } from "./auth.ts";
import { formOf, parseForm, safeBack } from "./forms.ts";
import { currentPath, isHtmx, type PanelDeps, query, sendHtml } from "./http.ts";
import type { View } from "./layout.ts";
import { loginPage, problemFragment, problemPage } from "./pages/login.ts";
import { logRoutes } from "./routes/logs.ts";
import { retriggerRoutes } from "./routes/retriggers.ts";
import { subscriptionRoutes } from "./routes/subscriptions.ts";
import { tokenRoutes } from "./routes/tokens.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Panel route reachable without a session (login, assets). */
    panelPublic?: boolean;
    /** Panel route answering a fragment for a polled region (errors leave the region as it was). */
    panelFragment?: boolean;
  }
}

export interface PanelOptions {
  ctx: ServiceContext;
  adminToken: string;
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

function loadAssets(): { htmx: string; css: string } {
  const require = createRequire(import.meta.url);
  return {
    htmx: fs.readFileSync(require.resolve("htmx.org/dist/htmx.min.js"), "utf8"),
    css: fs.readFileSync(new URL("./assets/panel.css", import.meta.url), "utf8"),
  };
}

/** The operator panel under /webhooks: server-rendered pages over the same service functions as the API. */
export function panelPlugin(opts: PanelOptions) {
  const { ctx } = opts;
  const auth = new PanelAuth(opts.adminToken);
  // Wrong tokens per client address (behind a proxy, the client's address with HERALD_TRUST_PROXY).
  const loginLimit = new LoginLimit();
  const assets = loadAssets();
  const sessions = new WeakMap<FastifyRequest, Session>();

  const viewOf = (req: FastifyRequest): View => {
    const s = sessions.get(req);
    if (!s) throw new HeraldError("unauthorized", "log in first");
    return { csrf: s.csrf, now: new Date() };
  };

  return async (app: FastifyInstance): Promise<void> => {
    // The panel is HTML for people, not part of the API contract: keep it out of /openapi.json.
    app.addHook("onRoute", (route) => {
      route.schema = { ...route.schema, hide: true };
    });
    app.addContentTypeParser(
      "application/x-www-form-urlencoded",
      { parseAs: "string", bodyLimit: 2 * 1024 * 1024 },
      (_req, body, done) => done(null, parseForm(String(body))),
    );

    app.addHook("onSend", async (_req, reply, payload) => {
      reply.header("Content-Security-Policy", CSP);
      reply.header("X-Content-Type-Options", "nosniff");
      reply.header("X-Frame-Options", "DENY");
      reply.header("Referrer-Policy", "same-origin");
      // Pages may show secrets (a rotated one) and live numbers: never cached. Assets set their own.
      if (!reply.hasHeader("Cache-Control")) reply.header("Cache-Control", "no-store");
      return payload;
    });

    // Every route but login and the assets needs a session; every POST also its CSRF token.
    app.addHook("onRequest", async (req, reply) => {
      if (req.routeOptions.config?.panelPublic) return;
      const session = auth.verify(readCookie(req.headers.cookie, SESSION_COOKIE));
      if (session) {
        sessions.set(req, session);
        return;
      }
      const next = currentPath(req);
      const login = `/webhooks/login?next=${encodeURIComponent(next)}`;
      if (isHtmx(req)) {
        return reply.code(401).header("HX-Redirect", login).type("text/plain").send("log in first");
      }
      if (req.method === "GET") return reply.redirect(login, 303);
      return sendHtml(reply, 401, loginPage({ next, error: "Your session has ended: log in again." }));
    });
    app.addHook("preHandler", async (req, reply) => {
      if (req.method !== "POST" || req.routeOptions.config?.panelPublic) return;
      const session = sessions.get(req);
      if (!session || !auth.checkCsrf(session, formOf(req.body)._csrf)) {
        return sendHtml(
          reply,
          403,
          problemPage(
            session ? { csrf: session.csrf, now: new Date() } : null,
            "Form expired",
            "This form did not come from your current panel session (CSRF check failed), so nothing was changed. Reload the page and try again.",
          ),
        );
      }
    });

    app.setErrorHandler((err: FastifyError, req, reply) => {
      let h: HeraldError;
      if (err instanceof HeraldError) h = err;
      else if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE")
        h = new HeraldError("payload_too_large", "the form is too large");
      else if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
        h = new HeraldError(
          "unsupported_media_type",
          "send the panel's forms as application/x-www-form-urlencoded",
        );
      else if (typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 500)
        h = new HeraldError("bad_request", err.message);
      else h = new HeraldError("internal", "Something went wrong on Herald's side; it was logged.");
      if (h.status >= 500) req.log.error({ err }, "panel request failed");
      if (req.routeOptions.config?.panelFragment) {
        // Keep the region as it was; the next poll tries again.
        return sendHtml(reply.header("HX-Reswap", "none"), h.status, problemFragment(h.message));
      }
      const s = sessions.get(req);
      const title = h.status === 404 ? "Not found" : h.status >= 500 ? "Error" : "Not done";
      return sendHtml(
        reply,
        h.status,
        problemPage(s ? { csrf: s.csrf, now: new Date() } : null, title, h.message),
      );
    });
    app.setNotFoundHandler((req, reply) => {
      const s = auth.verify(readCookie(req.headers.cookie, SESSION_COOKIE));
      return sendHtml(
        reply,
        404,
        problemPage(
          s ? { csrf: s.csrf, now: new Date() } : null,
          "Not found",
          `There is no page ${req.url.split("?")[0]}.`,
        ),
      );
    });

    const open = { config: { panelPublic: true } };

    // ---- assets and login ------------------------------------------------------------------------

    app.get("/assets/htmx.min.js", open, async (_req, reply) =>
      reply
        .header("Cache-Control", "public, max-age=3600")
        .type("text/javascript; charset=utf-8")
        .send(assets.htmx),
    );
    app.get("/assets/panel.css", open, async (_req, reply) =>
      reply.header("Cache-Control", "public, max-age=300").type("text/css; charset=utf-8").send(assets.css),
    );

    app.get("/login", open, async (req, reply) => {
      const q = query(req);
      const next = safeBack(q.next, "/webhooks");
      if (auth.verify(readCookie(req.headers.cookie, SESSION_COOKIE))) return reply.redirect(next, 303);
      return sendHtml(reply, 200, loginPage({ next, loggedOut: q.logged_out === "1" }));
    });

    app.post("/login", open, async (req, reply) => {
      const form = formOf(req.body);
      const next = safeBack(form.next, "/webhooks");
      const token = form.token ?? "";
      if (token === "") return sendHtml(reply, 400, loginPage({ next, error: "Enter the admin token." }));
      // The right token always logs in, also from an address over its limit (it clears the count):
      // someone guessing from the same address, or behind the same proxy, cannot lock the operator out.
      if (!auth.isAdminToken(token)) {
        const now = Date.now();
        const wait = loginLimit.retryAfterMs(req.ip, now);
        if (wait > 0) {
          const minutes = Math.ceil(wait / 60_000);
          reply.header("Retry-After", String(Math.ceil(wait / 1000)));
          return sendHtml(
            reply,
            429,
            loginPage({
              next,
              error: `Too many wrong tokens from this address: try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
            }),
          );
        }
        loginLimit.failed(req.ip, now);
        return sendHtml(reply, 401, loginPage({ next, error: "That is not the admin token." }));
      }
      loginLimit.succeeded(req.ip);
      const { cookie } = auth.issue();
      reply.header("Set-Cookie", auth.setCookie(cookie, req.protocol === "https"));
      return reply.redirect(next, 303);
    });

    app.post("/logout", async (req, reply) => {
      const s = sessions.get(req);
      if (s) auth.revoke(s);
      reply.header("Set-Cookie", auth.setCookie(null, req.protocol === "https"));
      return reply.redirect("/webhooks/login?logged_out=1", 303);
    });

    const deps: PanelDeps = { ctx, viewOf };
    subscriptionRoutes(app, deps);
    logRoutes(app, deps);
    retriggerRoutes(app, deps);
    tokenRoutes(app, deps);
  };
}
