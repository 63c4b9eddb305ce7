import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from "fastify";
import { HeraldError } from "../errors.ts";
import { panelPlugin } from "../panel/plugin.ts";
import type { Actor, ServiceContext } from "../service/context.ts";
import { authenticate } from "../service/tokens.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes, type Readiness } from "./routes/health.ts";
import { operatorRoutes } from "./routes/operator.ts";
import { retriggerRoutes } from "./routes/retriggers.ts";
import { subscriptionRoutes } from "./routes/subscriptions.ts";
import { tenantRoutes } from "./routes/tenants.ts";
import { auditRoutes, tokenRoutes } from "./routes/tokens-audit.ts";
import { ErrorBody } from "./schemas.ts";

declare module "fastify" {
  interface FastifyRequest {
    actor: Actor;
  }
}

export type App = FastifyInstance;

export interface AppOptions {
  ctx: ServiceContext;
  adminToken: string;
  readiness?: Readiness;
  /** Extra plugins (metrics, panel) registered by the process. */
  register?: (app: FastifyInstance) => Promise<void>;
}

interface AjvError {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
}

/** Turns a schema failure into one sentence that names the field. */
export function describeValidation(errors: readonly AjvError[], context: string | undefined): string {
  const e = errors[0];
  if (!e) return "invalid request";
  const where = (e.instancePath ?? "").replace(/^\//, "").replaceAll("/", ".");
  const prefix = context && context !== "body" ? `${context} ` : "";
  const field = (name: string) => `${prefix}field "${where ? `${where}.` : ""}${name}"`;
  const at = where ? `${prefix}field "${where}"` : prefix.trim() || "body";
  switch (e.keyword) {
    case "additionalProperties":
      return `unknown ${field(String(e.params?.additionalProperty))}`;
    case "required":
      return `missing required ${field(String(e.params?.missingProperty))}`;
    case "type":
      return `${at} must be ${String(e.params?.type)}`;
    case "minLength":
      return `${at} must be at least ${String(e.params?.limit)} characters`;
    case "maxLength":
      return `${at} must be at most ${String(e.params?.limit)} characters`;
    case "minItems":
      return `${at} must have at least ${String(e.params?.limit)} items`;
    case "maxItems":
      return `${at} must have at most ${String(e.params?.limit)} items`;
    case "format":
      return `${at} must be a valid ${String(e.params?.format)}`;
    default:
      return `${at} ${e.message ?? "is invalid"}`;
  }
}

function toHeraldError(err: FastifyError, req: FastifyRequest): HeraldError {
  if (err instanceof HeraldError) return err;
  if (err.validation) {
    const keyword = err.validation[0]?.keyword;
    const code = keyword === "additionalProperties" ? "unknown_field" : "invalid_field";
    return new HeraldError(code, describeValidation(err.validation, err.validationContext));
  }
  switch (err.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new HeraldError("invalid_json", `request body is not valid JSON: ${err.message}`);
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new HeraldError(
        "payload_too_large",
        `request body exceeds ${req.routeOptions.bodyLimit ?? "the limit of"} bytes`,
      );
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new HeraldError("unsupported_media_type", "content-type must be application/json");
  }
  if (typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 500) {
    return new HeraldError("bad_request", err.message);
  }
  return new HeraldError("internal", "internal error");
}

/** The HTTP API as a Fastify instance (not listening): the process or a test decides where it serves. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { ctx } = opts;
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.settings.maxBodyBytes + 64 * 1024,
    // Behind a TLS-terminating proxy: the client's address and https come from X-Forwarded-*.
    trustProxy: ctx.settings.trustProxy,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true, allErrors: false },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "Herald API", version: "0.1.0", description: "Outbound webhook delivery" },
      components: {
        securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      },
      security: [{ bearer: [] }],
    },
  });
  app.addSchema(ErrorBody);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const h = toHeraldError(err, req);
    if (h.status >= 500) req.log.error({ err }, "request failed");
    return reply.status(h.status).send({ error: { code: h.code, message: h.message } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .send({ error: { code: "not_found", message: `no route ${req.method} ${req.url.split("?")[0]}` } }),
  );

  // Set by the onRequest hook below before any /v1 handler runs.
  (app.decorateRequest as (name: string, value: unknown) => void)("actor", null);
  app.addHook("onRequest", async (req) => {
    if (!req.url.startsWith("/v1/")) return;
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m?.[1])
      throw new HeraldError("unauthorized", "missing bearer token (Authorization: Bearer <token>)");
    const actor = await authenticate(ctx, opts.adminToken, m[1]);
    if (!actor) throw new HeraldError("unauthorized", "unknown or revoked token");
    req.actor = actor;
  });

  await app.register(healthRoutes(ctx, opts.readiness));
  await app.register(eventRoutes(ctx), { prefix: "/v1" });
  await app.register(subscriptionRoutes(ctx), { prefix: "/v1" });
  await app.register(operatorRoutes(ctx), { prefix: "/v1" });
  await app.register(retriggerRoutes(ctx), { prefix: "/v1" });
  await app.register(tokenRoutes(ctx), { prefix: "/v1" });
  await app.register(tenantRoutes(ctx), { prefix: "/v1" });
  await app.register(auditRoutes(ctx), { prefix: "/v1" });
  await app.register(panelPlugin({ ctx, adminToken: opts.adminToken }), { prefix: "/webhooks" });
  if (opts.register) await opts.register(app);

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}
