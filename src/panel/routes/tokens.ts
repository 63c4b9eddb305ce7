import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { createTenantToken, listTokens, revokeToken } from "../../service/tokens.ts";
import { field, formOf, safeBack } from "../forms.ts";
import { ADMIN, PAGE_SIZE, type PanelDeps, param, query, refusal, sendHtml } from "../http.ts";
import { notice } from "../layout.ts";
import { type TokenFilter, type TokensData, tokensPage } from "../pages/tokens.ts";

/** Tenant tokens: list, create (value shown once), revoke; audited as `admin` like every panel action. */
export function tokenRoutes(app: FastifyInstance, deps: PanelDeps): void {
  const { ctx, viewOf } = deps;

  const render = async (
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    filter: TokenFilter,
    extra: Partial<TokensData> = {},
  ) => {
    const r = await listTokens(ctx, ADMIN, {
      tenant_id: filter.tenant,
      include_revoked: filter.all ?? false,
      after: filter.cursor,
      limit: PAGE_SIZE,
    });
    return sendHtml(
      reply,
      status,
      tokensPage(viewOf(req), { items: r.items, nextCursor: r.next_cursor, filter, ...extra }),
    );
  };

  app.get("/tokens", async (req, reply) => {
    const q = query(req);
    return render(req, reply, 200, { tenant: q.tenant, all: q.all === "1", cursor: q.cursor });
  });

  app.post("/tokens", async (req, reply) => {
    const form = formOf(req.body);
    const input = { tenant_id: field(form, "tenant_id") ?? "", name: field(form, "name") };
    reply.header("HX-Push-Url", "/webhooks/tokens");
    try {
      const t = await createTenantToken(ctx, ADMIN, input);
      return render(req, reply, 201, {}, { created: t });
    } catch (err) {
      const h = refusal(err);
      if (!h) throw err;
      return render(req, reply, h.status, {}, { flash: notice("error", h.message), form: input });
    }
  });

  app.post("/tokens/:token/revoke", async (req, reply) => {
    const form = formOf(req.body);
    const back = safeBack(form.back, "/webhooks/tokens");
    try {
      await revokeToken(ctx, ADMIN, param(req, "token"), field(form, "reason"));
    } catch (err) {
      const h = refusal(err);
      if (!h) throw err;
      reply.header("HX-Push-Url", "/webhooks/tokens");
      return render(req, reply, h.status, {}, { flash: notice("error", h.message) });
    }
    return reply.redirect(back, 303);
  });
}
