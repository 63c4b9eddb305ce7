import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { MAX_ID_LENGTH } from "../../domain/retrigger.ts";
import { HeraldError } from "../../errors.ts";
import {
  type CreateRetriggerInput,
  cancelRetrigger,
  createRetrigger,
  getRetrigger,
  listRetriggerItems,
  listRetriggers,
  resumeRetrigger,
} from "../../service/retrigger.ts";
import {
  eventIdList,
  type Form,
  field,
  formOf,
  idList,
  intField,
  positiveInt,
  safeBack,
  utcField,
} from "../forms.ts";
import { ADMIN, FRAGMENT, type PanelDeps, param, query, refusal, sendHtml } from "../http.ts";
import { notice } from "../layout.ts";
import {
  FORM_FIELDS,
  jobLive,
  jobPage,
  jobRows,
  previewSection,
  type RetriggerForm,
  retriggersPage,
} from "../pages/retriggers.ts";

/** Re-trigger jobs: the list with live progress, a dry run then a run, one job's page, resume and cancel. */
export function retriggerRoutes(app: FastifyInstance, deps: PanelDeps): void {
  const { ctx, viewOf } = deps;

  async function jobsPage(
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    extra: Parameters<typeof retriggersPage>[2],
  ) {
    const cursor = positiveInt(query(req).cursor, "cursor");
    const r = await listRetriggers(ctx, ADMIN, { before: cursor, limit: 25 });
    return sendHtml(
      reply,
      status,
      retriggersPage(viewOf(req), { jobs: r.items, nextCursor: r.next_cursor, cursor }, extra),
    );
  }

  app.get("/retriggers", async (req, reply) => jobsPage(req, reply, 200, {}));
  app.get("/fragments/retriggers", FRAGMENT, async (req, reply) => {
    const cursor = positiveInt(query(req).cursor, "cursor");
    const r = await listRetriggers(ctx, ADMIN, { before: cursor, limit: 25 });
    const poll = cursor
      ? `/webhooks/fragments/retriggers?cursor=${cursor}`
      : "/webhooks/fragments/retriggers";
    return sendHtml(reply, 200, jobRows(viewOf(req), r.items, poll));
  });

  app.post("/retriggers", async (req, reply) => {
    const raw = formOf(req.body);
    const form: RetriggerForm = {};
    for (const f of FORM_FIELDS) if (raw[f] !== undefined) form[f] = raw[f];
    const mode = raw.mode === "run" ? "run" : "dry_run";
    try {
      const input = retriggerInput(raw);
      if (mode === "dry_run") {
        const r = await createRetrigger(ctx, ADMIN, { ...input, dry_run: true });
        if (!r.dryRun) throw new HeraldError("internal", "a dry run created a job");
        reply.header("HX-Push-Url", "/webhooks/retriggers");
        return jobsPage(req, reply, 200, { form, preview: previewSection(viewOf(req), r.preview, form) });
      }
      const r = await createRetrigger(ctx, ADMIN, { ...input, dry_run: false });
      if (r.dryRun) throw new HeraldError("internal", "a run answered with a dry run");
      return reply.redirect(`/webhooks/retriggers/${r.job.job_id}`, 303);
    } catch (err) {
      const h = refusal(err);
      if (!h) throw err;
      reply.header("HX-Push-Url", "/webhooks/retriggers");
      return jobsPage(req, reply, h.status, { form, error: h.message });
    }
  });

  async function loadJob(req: FastifyRequest) {
    const id = positiveInt(param(req, "job"), "job id");
    if (id === undefined) throw new HeraldError("not_found", "no such job");
    const [job, pending, failed, skipped] = await Promise.all([
      getRetrigger(ctx, ADMIN, id),
      listRetriggerItems(ctx, ADMIN, id, { outcome: "pending", limit: 100 }),
      listRetriggerItems(ctx, ADMIN, id, { outcome: "failed", limit: 50 }),
      listRetriggerItems(ctx, ADMIN, id, { outcome: "skipped", limit: 50 }),
    ]);
    return { job, pending: pending.items, notSent: [...failed.items, ...skipped.items] };
  }

  app.get("/retriggers/:job", async (req, reply) => {
    const j = await loadJob(req);
    return sendHtml(reply, 200, jobPage(viewOf(req), j.job, j.pending, j.notSent));
  });
  app.get("/retriggers/:job/live", FRAGMENT, async (req, reply) => {
    const j = await loadJob(req);
    return sendHtml(reply, 200, jobLive(viewOf(req), j.job, j.pending, j.notSent));
  });
  app.get("/retriggers/:job/:action", async (req, reply) =>
    reply.redirect(`/webhooks/retriggers/${encodeURIComponent(param(req, "job"))}`, 303),
  );

  for (const action of ["resume", "cancel"] as const) {
    app.post(`/retriggers/:job/${action}`, async (req, reply) => {
      const id = positiveInt(param(req, "job"), "job id");
      if (id === undefined) throw new HeraldError("not_found", "no such job");
      const form = formOf(req.body);
      const back = safeBack(form.back, `/webhooks/retriggers/${id}`);
      try {
        if (action === "resume") await resumeRetrigger(ctx, ADMIN, id, field(form, "reason"));
        else await cancelRetrigger(ctx, ADMIN, id, field(form, "reason"));
      } catch (err) {
        const h = refusal(err);
        if (!h || h.code === "not_found") throw err;
        const j = await loadJob(req);
        reply.header("HX-Push-Url", `/webhooks/retriggers/${id}`);
        return sendHtml(
          reply,
          h.status,
          jobPage(viewOf(req), j.job, j.pending, j.notSent, notice("error", h.message)),
        );
      }
      return reply.redirect(back, 303);
    });
  }
}

/** The create form as the re-trigger service's input; a malformed field is a 400 naming it. */
function retriggerInput(form: Form): CreateRetriggerInput {
  const selection = field(form, "selection") ?? "aggregate_ids";
  const input: CreateRetriggerInput = {
    tenant_id: field(form, "tenant_id"),
    event_type: field(form, "event_type") ?? "",
    subscription_id: field(form, "subscription_id"),
    batch_size: intField(form, "batch_size", "Batch size"),
    delay_ms: intField(form, "delay_ms", "Delay between chunks"),
    skip_delivered_after: utcField(form, "skip_delivered_after", "Skip aggregates delivered since"),
  };
  if (!input.tenant_id) throw new HeraldError("invalid_field", "Give the tenant.");
  if (!input.event_type) throw new HeraldError("invalid_field", "Give the event type.");
  if (selection === "window") {
    input.occurred_after = utcField(form, "occurred_after", "Occurred after");
    input.occurred_before = utcField(form, "occurred_before", "Occurred before");
    if (!input.occurred_after && !input.occurred_before) {
      throw new HeraldError("invalid_field", "Give the window: occurred after, occurred before, or both.");
    }
  } else if (selection === "event_ids") {
    input.event_ids = eventIdList(form.ids, "Event IDs");
    if (!input.event_ids) throw new HeraldError("invalid_field", "List the event IDs to re-send.");
  } else if (selection === "aggregate_ids") {
    const ids = idList(form.ids);
    if (ids.length === 0) throw new HeraldError("invalid_field", "List the aggregate IDs to re-send.");
    const long = ids.find((i) => i.length > MAX_ID_LENGTH);
    if (long !== undefined) {
      throw new HeraldError(
        "invalid_field",
        `An aggregate ID is longer than ${MAX_ID_LENGTH} characters: "${long.slice(0, 40)}..."`,
      );
    }
    input.aggregate_ids = ids;
  } else {
    throw new HeraldError("invalid_field", "Select events by aggregate IDs, event IDs or a time window.");
  }
  return input;
}
