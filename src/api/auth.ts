import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { LoginLimit } from "../domain/login-limit.ts";
import { HeraldError } from "../errors.ts";
import type { Actor, ServiceContext } from "../service/context.ts";
import { authenticate } from "../service/tokens.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated caller; reading it on a request that has none throws `unauthorized`. */
    actor: Actor;
  }
}

const ACTOR = Symbol("herald.actor");
type WithActor = FastifyRequest & { [ACTOR]?: Actor };

/**
 * Declares `req.actor` so that it fails closed: a handler that runs without an authenticated caller
 * (a route registered outside the authenticated scope by mistake) answers 401, never acts as nobody.
 */
export function declareActor(app: FastifyInstance): void {
  app.decorateRequest("actor", {
    getter(this: FastifyRequest): Actor {
      const a = (this as WithActor)[ACTOR];
      if (!a) throw new HeraldError("unauthorized", "missing bearer token (Authorization: Bearer <token>)");
      return a;
    },
    setter(this: FastifyRequest, a: Actor) {
      (this as WithActor)[ACTOR] = a;
    },
  });
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerOf(header: string | undefined): string | null {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1] ?? null;
}

/** Sends the 429 of a client over its failure budget. */
export function sendRateLimited(reply: FastifyReply, waitMs: number, what: string): FastifyReply {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return reply
    .code(429)
    .header("Retry-After", String(seconds))
    .send({
      error: {
        code: "rate_limited",
        message: `too many failed ${what} from this address: retry in ${seconds} s`,
      },
    });
}

export interface BearerAuthOptions {
  ctx: ServiceContext;
  adminToken: string;
  /** Failed authentications per client address (HERALD_AUTH_FAILURE_LIMIT per HERALD_AUTH_FAILURE_WINDOW_MS). */
  failures: LoginLimit;
}

/**
 * The onRequest hook of every /v1 route. It is added in the scope of the /v1 plugins, so it runs for
 * exactly the routes the router matched there, however their path was spelled (`/%761/…` included).
 *
 * Only failures count against a client: a correct token is always accepted, also from an address over
 * its budget; a wrong one from such an address answers 429 with Retry-After instead of 401. A success
 * does not reset the count (a tenant holding a good token could otherwise interleave it with guesses).
 */
export function bearerAuth(opts: BearerAuthOptions) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const token = bearerOf(req.headers.authorization);
    if (token === null) {
      throw new HeraldError("unauthorized", "missing bearer token (Authorization: Bearer <token>)");
    }
    const actor = await authenticate(opts.ctx, opts.adminToken, token);
    if (actor) {
      req.actor = actor;
      return undefined;
    }
    const now = Date.now();
    const wait = opts.failures.retryAfterMs(req.ip, now);
    if (wait > 0) return sendRateLimited(reply, wait, "authentications");
    opts.failures.failed(req.ip, now);
    throw new HeraldError("unauthorized", "unknown or revoked token");
  };
}

/**
 * The onRequest hook of GET /metrics when HERALD_METRICS_TOKEN is set: that bearer token (compared in
 * constant time) or 401; wrong tokens count against the client like any failed authentication.
 */
export function metricsAuth(token: string, failures: LoginLimit) {
  const expected = createHash("sha256").update(token).digest();
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const presented = bearerOf(req.headers.authorization);
    if (presented === null) {
      throw new HeraldError(
        "unauthorized",
        "/metrics needs its token (Authorization: Bearer <HERALD_METRICS_TOKEN>)",
      );
    }
    if (timingSafeEqual(createHash("sha256").update(presented).digest(), expected)) return undefined;
    const now = Date.now();
    const wait = failures.retryAfterMs(req.ip, now);
    if (wait > 0) return sendRateLimited(reply, wait, "authentications");
    failures.failed(req.ip, now);
    throw new HeraldError("unauthorized", "wrong metrics token");
  };
}
