import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from "fastify";
import { LoginLimit } from "../domain/login-limit.ts";
import { HeraldError } from "../errors.ts";
import { panelPlugin } from "../panel/plugin.ts";
import type { ServiceContext } from "../service/context.ts";
import { bearerAuth, declareActor, metricsAuth } from "./auth.ts";
import { clientErrorHandler, frameworkErrors } from "./framework-errors.ts";
import { installInputValidation } from "./input.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes, type Readiness } from "./routes/health.ts";
import { operatorRoutes } from "./routes/operator.ts";
import { retriggerRoutes } from "./routes/retriggers.ts";
import { subscriptionRoutes } from "./routes/subscriptions.ts";
import { tenantRoutes } from "./routes/tenants.ts";
import { auditRoutes, tokenRoutes } from "./routes/tokens-audit.ts";
import { ErrorBody } from "./schemas.ts";

export type App = FastifyInstance;

export interface AppOptions {
  ctx: ServiceContext;
  adminToken: string;
  readiness?: Readiness;
  /** Extra plugins registered by the process. */
  register?: (app: FastifyInstance) => Promise<void>;
  /** The process's Prometheus metrics, served at GET /metrics (behind HERALD_METRICS_TOKEN when set). */
  metrics?: { contentType: string; render(): Promise<string> };
}

interface AjvError {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
}

const CONTEXT_LABELS: Record<string, string> = {
  querystring: "query parameter",
  params: "path parameter",
  headers: "header",
};

/** Turns a schema failure into one sentence that names the field (or the parameter) and the rule. */
export function describeValidation(errors: readonly AjvError[], context: string | undefined): string {
  const e = errors[0];
  if (!e) return "invalid request";
  const where = (e.instancePath ?? "").replace(/^\//, "").replaceAll("/", ".");
  const kind = context && context !== "body" ? (CONTEXT_LABELS[context] ?? `${context} field`) : "field";
  const field = (name: string) => `${kind} "${where ? `${where}.` : ""}${name}"`;
  const at = where
    ? `${kind} "${where}"`
    : context && context !== "body"
      ? (CONTEXT_LABELS[context] ?? context)
      : "body";
  const limit = String(e.params?.limit);
  switch (e.keyword) {
    case "additionalProperties":
      return `unknown ${field(String(e.params?.additionalProperty))}`;
    case "required":
      return `missing required ${field(String(e.params?.missingProperty))}`;
    case "type":
      return `${at} must be ${String(e.params?.type)}`;
    case "minLength":
      return `${at} must be at least ${limit} characters`;
    case "maxLength":
      return `${at} must be at most ${limit} characters`;
    case "minItems":
      return `${at} must have at least ${limit} items`;
    case "maxItems":
      return `${at} must have at most ${limit} items`;
    case "minimum":
      return `${at} must be at least ${limit}`;
    case "maximum":
      return `${at} must be at most ${limit}`;
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

/** Client addresses the failed-authentication table remembers at most (the oldest is forgotten first). */
const AUTH_FAILURE_CLIENTS = 10_000;

/** The HTTP API as a Fastify instance (not listening): the process or a test decides where it serves. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { ctx } = opts;
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.settings.maxBodyBytes + 64 * 1024,
    // Behind a TLS-terminating proxy: the client's address and https come from X-Forwarded-*.
    trustProxy: ctx.settings.trustProxy,
    frameworkErrors,
    clientErrorHandler,
    ajv: {
      // No coercion: a JSON body's wrong type is a 400. Path and query integers are strings by nature;
      // installInputValidation converts them, decimal digits only.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  installInputValidation(app);

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

  declareActor(app);
  // Failed bearer authentications per client address, for every route that takes a bearer token.
  const failures = new LoginLimit({
    maxFailures: ctx.settings.authFailureLimit,
    windowMs: ctx.settings.authFailureWindowMs,
    maxClients: AUTH_FAILURE_CLIENTS,
  });
  const authn = bearerAuth({ ctx, adminToken: opts.adminToken, failures });
  await app.register(healthRoutes(ctx, opts.readiness));
  // Every /v1 route is registered in this scope, whose onRequest hook authenticates: the decision
  // follows the route the router matched, not how the request spelled its path.
  await app.register(
    async (v1) => {
      v1.addHook("onRequest", authn);
      await v1.register(eventRoutes(ctx));
      await v1.register(subscriptionRoutes(ctx));
      await v1.register(operatorRoutes(ctx));
      await v1.register(retriggerRoutes(ctx));
      await v1.register(tokenRoutes(ctx));
      await v1.register(tenantRoutes(ctx));
      await v1.register(auditRoutes(ctx));
    },
    { prefix: "/v1" },
  );
  await app.register(panelPlugin({ ctx, adminToken: opts.adminToken }), { prefix: "/webhooks" });
  const metrics = opts.metrics;
  if (metrics) {
    const { metricsToken } = ctx.settings;
    app.get(
      "/metrics",
      { schema: { hide: true }, ...(metricsToken ? { onRequest: metricsAuth(metricsToken, failures) } : {}) },
      async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()),
    );
  }
  if (opts.register) await opts.register(app);

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}
