import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ERROR_KINDS, isErrorKind } from "../../domain/error-kind.ts";
import { MAX_ID } from "../../domain/input-rules.ts";
import { findInexactNumber } from "../../domain/json-numbers.ts";
import { HeraldError } from "../../errors.ts";
import { lastOutcomesOf } from "../../service/error-log.ts";
import {
  dropHead,
  headDiagnosis,
  listDeliveryRows,
  repairEvent,
  replayDelivery,
  replayDlq,
} from "../../service/operator.ts";
import { sampleSeries } from "../../service/samples.ts";
import {
  getSubscription,
  listSubscriptionViews,
  rotateSecret,
  updateSubscriptionFields,
} from "../../service/subscriptions.ts";
import { num, utc } from "../format.ts";
import { eventIdList, field, formOf, intField, positiveInt, safeBack, utcField } from "../forms.ts";
import { html } from "../html.ts";
import {
  ADMIN,
  FRAGMENT,
  isOneOf,
  PAGE_SIZE,
  type PanelDeps,
  param,
  query,
  refusal,
  sendHtml,
} from "../http.ts";
import { notice } from "../layout.ts";
import {
  type DetailData,
  type DetailState,
  deliveriesSection,
  type FormKey,
  liveSection,
  subscriptionPage,
} from "../pages/subscription.ts";
import {
  type ListData,
  type ListFilter,
  subscriptionRows,
  subscriptionsPage,
} from "../pages/subscriptions.ts";

const RECENT_DELIVERIES = 20;

/** The subscriptions list, a subscription's page, and its actions (each a service call as the admin). */
export function subscriptionRoutes(app: FastifyInstance, deps: PanelDeps): void {
  const { ctx, viewOf } = deps;

  async function loadList(f: ListFilter): Promise<ListData> {
    const r = await listSubscriptionViews(ctx, ADMIN, {
      status: f.status,
      tenant_id: f.tenant,
      after: f.cursor,
      limit: PAGE_SIZE,
    });
    const ids = r.items.map((s) => s.subscription_id);
    const [outcomes, series] = await Promise.all([lastOutcomesOf(ctx, ids), sampleSeries(ctx, ids)]);
    return { items: r.items, outcomes, series, filter: f, nextCursor: r.next_cursor };
  }

  function listFilter(req: FastifyRequest): ListFilter {
    const q = query(req);
    const status = q.status;
    if (status !== undefined && !isOneOf(status, ["active", "paused"] as const)) {
      throw new HeraldError("invalid_field", `status must be active or paused; got "${status.slice(0, 40)}"`);
    }
    return { tenant: q.tenant, status, cursor: q.cursor };
  }

  async function loadDetail(id: string, parts: { deliveries: boolean }): Promise<DetailData> {
    const sub = await getSubscription(ctx, ADMIN, id);
    const [head, deliveries, series] = await Promise.all([
      headDiagnosis(ctx, ADMIN, id),
      parts.deliveries
        ? listDeliveryRows(ctx, ADMIN, { subscription_id: id, limit: RECENT_DELIVERIES }).then((r) => r.items)
        : Promise.resolve([]),
      sampleSeries(ctx, [id]),
    ]);
    return { sub, head, deliveries, series, hardCap: ctx.settings.maxPendingHardCap };
  }

  /** Renders a subscription's page after an action: a message on top, or an error at its form. */
  async function detailAfter(
    req: FastifyRequest,
    reply: FastifyReply,
    id: string,
    action: () => Promise<{ state: DetailState; status?: number }>,
    key: FormKey,
    values: Record<string, string> = {},
  ): Promise<FastifyReply> {
    let state: DetailState;
    let status = 200;
    try {
      const r = await action();
      state = r.state;
      status = r.status ?? 200;
    } catch (err) {
      const h = refusal(err);
      if (!h || h.code === "not_found") throw err;
      state = { errors: { [key]: h.message }, values };
      if (key === "replay") state.flash = notice("error", h.message);
      status = h.status;
    }
    const data = await loadDetail(id, { deliveries: true });
    reply.header("HX-Push-Url", `/webhooks/${id}`);
    return sendHtml(reply, status, subscriptionPage(viewOf(req), data, state));
  }

  app.get("/", async (req, reply) =>
    sendHtml(reply, 200, subscriptionsPage(viewOf(req), await loadList(listFilter(req)))),
  );
  app.get("/fragments/subscriptions", FRAGMENT, async (req, reply) =>
    sendHtml(reply, 200, subscriptionRows(viewOf(req), await loadList(listFilter(req)))),
  );

  for (const action of ["pause", "resume"] as const) {
    app.post(`/:id/${action}`, async (req, reply) => {
      const id = param(req, "id");
      const form = formOf(req.body);
      await updateSubscriptionFields(ctx, ADMIN, id, {
        status: action === "pause" ? "paused" : "active",
        reason: field(form, "reason"),
      });
      return reply.redirect(safeBack(form.back, `/webhooks/${id}`), 303);
    });
  }

  app.get("/:id", async (req, reply) => {
    const data = await loadDetail(param(req, "id"), { deliveries: true });
    return sendHtml(reply, 200, subscriptionPage(viewOf(req), data));
  });
  app.get("/:id/live", FRAGMENT, async (req, reply) => {
    const data = await loadDetail(param(req, "id"), { deliveries: false });
    return sendHtml(reply, 200, liveSection(viewOf(req), data));
  });
  app.get("/:id/deliveries", FRAGMENT, async (req, reply) => {
    const data = await loadDetail(param(req, "id"), { deliveries: true });
    return sendHtml(reply, 200, deliveriesSection(viewOf(req), data));
  });
  // An action's address opened directly (a bookmark, a reload after a redirect): show the page.
  app.get("/:id/:action", async (req, reply) => reply.redirect(`/webhooks/${param(req, "id")}`, 303));

  app.post("/:id/drop", async (req, reply) => {
    const id = param(req, "id");
    const form = formOf(req.body);
    const reason = field(form, "reason") ?? "";
    return detailAfter(
      req,
      reply,
      id,
      async () => {
        if (reason === "") {
          throw new HeraldError(
            "invalid_field",
            "Give a reason: it is kept in the audit log and on the DLQ row.",
          );
        }
        const eventId = positiveInt(field(form, "event_id"), "event_id");
        if (form.confirm !== "yes") {
          if (eventId === undefined)
            throw new HeraldError("invalid_field", "event_id is missing: reload the page");
          return { state: { confirmDrop: { reason, event_id: eventId } } };
        }
        const r = await dropHead(ctx, ADMIN, id, { reason, event_id: eventId });
        return {
          state: {
            flash: notice(
              "ok",
              html`Dropped event ${r.event_id}: ${r.moved_to_dlq} ${r.moved_to_dlq === 1 ? "delivery" : "deliveries"} moved to the DLQ; the cursor is at event ${r.last_delivered_event_id ?? "—"}. Resume the subscription to deliver the rest.`,
            ),
          },
        };
      },
      "drop",
      { reason },
    );
  });

  app.post("/:id/repair", async (req, reply) => {
    const id = param(req, "id");
    const form = formOf(req.body);
    const values = { payload: form.payload ?? "", repair_reason: form.reason ?? "" };
    return detailAfter(
      req,
      reply,
      id,
      async () => {
        const eventId = positiveInt(field(form, "event_id"), "event_id");
        if (eventId === undefined)
          throw new HeraldError("invalid_field", "event_id is missing: reload the page");
        let payload: unknown;
        const text = form.payload ?? "";
        try {
          payload = JSON.parse(text);
        } catch (err) {
          throw new HeraldError("invalid_field", `The payload is not valid JSON: ${(err as Error).message}`);
        }
        const inexact = findInexactNumber(text);
        if (inexact) {
          throw new HeraldError(
            "invalid_field",
            `The payload's number ${inexact.literal.slice(0, 40)} at ${inexact.path || "the top"} cannot be kept exactly: integers must be within ±${MAX_ID} and numbers finite (write it as a string)`,
          );
        }
        const r = await repairEvent(ctx, ADMIN, eventId, { payload, reason: field(form, "reason") });
        const again = [...r.rescheduled, ...r.replayed];
        return {
          state: {
            flash: notice(
              "ok",
              `Saved event ${r.event_id}'s corrected payload (the old one is in the audit log). ${
                again.length > 0
                  ? `It is queued again for ${again.join(", ")}.`
                  : "It was not queued anywhere: no delivery of it was waiting or in the DLQ."
              }`,
            ),
          },
        };
      },
      "repair",
      values,
    );
  });

  app.post("/:id/replay-dlq", async (req, reply) => {
    const id = param(req, "id");
    const form = formOf(req.body);
    const values = {
      since: form.since ?? "",
      until: form.until ?? "",
      error_kind: form.error_kind ?? "",
      event_ids: form.event_ids ?? "",
    };
    return detailAfter(
      req,
      reply,
      id,
      async () => {
        const kind = field(form, "error_kind");
        if (kind !== undefined && !isErrorKind(kind)) {
          throw new HeraldError("invalid_field", `error kind must be one of ${ERROR_KINDS.join(", ")}`);
        }
        const r = await replayDlq(ctx, ADMIN, id, {
          since: utcField(form, "since", "Failed since"),
          until: utcField(form, "until", "Failed before"),
          error_kind: kind,
          event_ids: eventIdList(form.event_ids, "Event IDs"),
        });
        return {
          state: {
            flash: notice(
              "ok",
              r.queued === 0
                ? "Nothing was queued: no DLQ delivery matches that has not been replayed already."
                : `Queued ${num(r.queued)} DLQ ${r.queued === 1 ? "delivery" : "deliveries"} again.${r.more ? " More match: replay again for the next batch." : ""}`,
            ),
          },
        };
      },
      "replay_dlq",
      values,
    );
  });

  app.post("/:id/ceilings", async (req, reply) => {
    const id = param(req, "id");
    const form = formOf(req.body);
    const values = { pending_ceiling: form.pending_ceiling ?? "", dlq_ceiling: form.dlq_ceiling ?? "" };
    return detailAfter(
      req,
      reply,
      id,
      async () => {
        const pending = intField(form, "pending_ceiling", "Pending ceiling");
        const dlq = intField(form, "dlq_ceiling", "DLQ ceiling");
        if (pending === undefined && dlq === undefined) {
          throw new HeraldError("invalid_field", "Give a pending ceiling, a DLQ ceiling, or both.");
        }
        const s = await updateSubscriptionFields(ctx, ADMIN, id, {
          pending_ceiling: pending,
          dlq_ceiling: dlq,
        });
        return {
          state: {
            flash: notice(
              "ok",
              `Ceilings saved: pending ${num(s.pending_ceiling)}, DLQ ${num(s.dlq_ceiling)}.`,
            ),
          },
        };
      },
      "ceilings",
      values,
    );
  });

  app.post("/:id/rotate-secret", async (req, reply) => {
    const id = param(req, "id");
    const form = formOf(req.body);
    return detailAfter(
      req,
      reply,
      id,
      async () => {
        const overlap = intField(form, "overlap_seconds", "Overlap");
        const r = await rotateSecret(ctx, ADMIN, id, overlap);
        return {
          state: {
            flash: html`<div class="notice ok secret" role="status"><strong>New signing secret — shown this once, copy it now:</strong><output data-testid="new-secret">${r.secret}</output><p class="small">The previous secret keeps signing alongside it until ${utc(r.previous_secret_expires_at)}.</p></div>`,
          },
        };
      },
      "rotate",
      { overlap_seconds: form.overlap_seconds ?? "" },
    );
  });

  app.post("/:id/deliveries/:deliveryId/replay", async (req, reply) => {
    const id = param(req, "id");
    return detailAfter(
      req,
      reply,
      id,
      async () => {
        const deliveryId = positiveInt(param(req, "deliveryId"), "delivery id");
        if (deliveryId === undefined) throw new HeraldError("invalid_field", "delivery id is missing");
        const r = await replayDelivery(ctx, ADMIN, deliveryId);
        return {
          state: {
            flash: notice(
              "ok",
              `Delivery ${r.replay_of} is queued again as delivery ${r.delivery_id} (same webhook-id ${r.webhook_id}).`,
            ),
          },
        };
      },
      "replay",
    );
  });
}
