import { canCancel, canResume, RETRIGGER_BOUNDS } from "../../domain/retrigger.ts";
import type { ItemView, JobView, Preview } from "../../service/retrigger.ts";
import { duration, num, timeAgo, utc } from "../format.ts";
import { type Html, href, html, type Renderable } from "../html.ts";
import { csrfField, page, pager, type View } from "../layout.ts";

/** The create form's fields, as typed (kept to refill the form after a dry run or an error). */
export interface RetriggerForm {
  tenant_id?: string;
  event_type?: string;
  selection?: string;
  ids?: string;
  occurred_after?: string;
  occurred_before?: string;
  subscription_id?: string;
  batch_size?: string;
  delay_ms?: string;
  skip_delivered_after?: string;
}

export const FORM_FIELDS: ReadonlyArray<keyof RetriggerForm> = [
  "tenant_id",
  "event_type",
  "selection",
  "ids",
  "occurred_after",
  "occurred_before",
  "subscription_id",
  "batch_size",
  "delay_ms",
  "skip_delivered_after",
];

function progress(j: JobView): Html {
  const pct = j.total === 0 ? 100 : Math.floor((j.completed / j.total) * 100);
  return html`<progress max="${Math.max(1, j.total)}" value="${j.completed}" aria-label="Job ${j.job_id}: ${j.completed} of ${j.total} done">${pct}%</progress><div class="small" data-testid="progress-${j.job_id}">${num(j.completed)} of ${num(j.total)} done</div>`;
}

function jobActions(view: View, j: JobView, back: string): Html {
  const resume = canResume(j.status) && (j.status === "failed" || j.interrupted);
  return html`<div class="actions">${
    resume
      ? html`<form class="inline" method="post" action="/webhooks/retriggers/${j.job_id}/resume">${csrfField(view)}<input type="hidden" name="back" value="${back}"><button type="submit" class="primary">Resume<span class="visually-hidden"> job ${j.job_id}</span></button></form>`
      : ""
  }${
    canCancel(j.status)
      ? html`<form class="inline" method="post" action="/webhooks/retriggers/${j.job_id}/cancel">${csrfField(view)}<input type="hidden" name="back" value="${back}"><button type="submit">Cancel<span class="visually-hidden"> job ${j.job_id}</span></button></form>`
      : ""
  }</div>`;
}

function selectionText(j: { selection: Record<string, unknown> }): string {
  const s = j.selection;
  if (s.kind === "window") {
    return `events from ${String(s.occurred_after ?? "the start")} to ${String(s.occurred_before ?? "now")}`;
  }
  if (s.kind === "aggregate_ids") return `${String(s.ids)} aggregate IDs`;
  if (s.kind === "event_ids") return `${String(s.ids)} event IDs`;
  return JSON.stringify(s);
}

/** The jobs table body, polled so the progress bars move. */
export function jobRows(view: View, jobs: JobView[], pollUrl: string): Html {
  const rows =
    jobs.length === 0
      ? html`<tr><td colspan="8">No re-trigger jobs yet.</td></tr>`
      : jobs.map(
          (j) => html`<tr id="job-${j.job_id}">
<td data-label="Job"><a href="/webhooks/retriggers/${j.job_id}">job ${j.job_id}</a></td>
<td data-label="Tenant">${j.tenant_id}</td>
<td data-label="Event type">${j.event_type}<div class="small muted">${selectionText(j)}</div></td>
<td data-label="Status"><span class="badge ${j.status}" data-testid="status-${j.job_id}">${j.status}</span>${j.interrupted ? html` <span class="small">interrupted</span>` : ""}</td>
<td data-label="Progress">${progress(j)}</td>
<td data-label="Pending" class="num">${num(j.pending)}</td>
<td data-label="Sent / skipped / failed" class="num">${num(j.sent)} / ${num(j.skipped)} / ${num(j.failed)}</td>
<td data-label="Action">${jobActions(view, j, "/webhooks/retriggers")}</td>
</tr>`,
        );
  return html`<tbody id="job-rows" hx-get="${pollUrl}" hx-trigger="every 2s" hx-swap="outerHTML">${rows}</tbody>`;
}

function text(name: keyof RetriggerForm, form: RetriggerForm): string {
  return form[name] ?? "";
}

function bounds(field: keyof typeof RETRIGGER_BOUNDS): string {
  const b = RETRIGGER_BOUNDS[field];
  return `${num(b.min)} – ${num(b.max)}, default ${num(b.default)}`;
}

export function createForm(view: View, form: RetriggerForm, error?: string): Html {
  const sel = form.selection ?? "aggregate_ids";
  const radio = (v: string, label: string) =>
    html`<label><input type="radio" name="selection" value="${v}"${sel === v ? html` checked` : ""}> ${label}</label>`;
  return html`<form method="post" action="/webhooks/retriggers" class="stack card" aria-labelledby="new-job-heading">${csrfField(view)}
<h2 id="new-job-heading">New re-trigger</h2>
<p class="hint">Each selected event is sent again as a new event (new event_id and webhook-id, same type, aggregate and payload). Start with a dry run: it sends nothing.</p>
<div class="grid">
<div>
<label for="rt-tenant"><span>Tenant</span></label><input type="text" id="rt-tenant" name="tenant_id" required value="${text("tenant_id", form)}">
<label for="rt-type"><span>Event type</span></label><input type="text" id="rt-type" name="event_type" required value="${text("event_type", form)}">
<label for="rt-sub"><span>Only this subscription (optional)</span></label><input type="text" id="rt-sub" name="subscription_id" value="${text("subscription_id", form)}">
</div>
<div>
<fieldset><legend class="field-label">Select events by</legend>${radio("aggregate_ids", "aggregate IDs")} ${radio("event_ids", "event IDs")} ${radio("window", "time window")}</fieldset>
<label for="rt-ids"><span>IDs (one per line, or comma-separated)</span></label><textarea id="rt-ids" name="ids" rows="4">${text("ids", form)}</textarea>
<label for="rt-after"><span>Window: occurred after (UTC)</span></label><input type="datetime-local" step="1" id="rt-after" name="occurred_after" value="${text("occurred_after", form)}">
<label for="rt-before"><span>Window: occurred before (UTC)</span></label><input type="datetime-local" step="1" id="rt-before" name="occurred_before" value="${text("occurred_before", form)}">
</div>
<div>
<label for="rt-batch"><span>Batch size (${bounds("batch_size")})</span></label><input type="number" id="rt-batch" name="batch_size" placeholder="${RETRIGGER_BOUNDS.batch_size.default}" min="${RETRIGGER_BOUNDS.batch_size.min}" max="${RETRIGGER_BOUNDS.batch_size.max}" value="${text("batch_size", form)}">
<label for="rt-delay"><span>Delay between chunks, ms (${bounds("delay_ms")})</span></label><input type="number" id="rt-delay" name="delay_ms" placeholder="${RETRIGGER_BOUNDS.delay_ms.default}" min="${RETRIGGER_BOUNDS.delay_ms.min}" max="${RETRIGGER_BOUNDS.delay_ms.max}" value="${text("delay_ms", form)}">
<label for="rt-skip"><span>Skip aggregates delivered since (UTC, optional)</span></label><input type="datetime-local" step="1" id="rt-skip" name="skip_delivered_after" value="${text("skip_delivered_after", form)}">
</div>
</div>
${error ? html`<p class="field-error" role="alert">${error}</p>` : ""}
<div class="actions"><button type="submit" name="mode" value="dry_run" class="primary">Dry run</button></div>
</form>`;
}

function hiddenFields(form: RetriggerForm): Html[] {
  return FORM_FIELDS.filter((f) => form[f] !== undefined && form[f] !== "").map(
    (f) => html`<input type="hidden" name="${f}" value="${form[f] ?? ""}">`,
  );
}

const PREVIEW_ROWS = 200;

export function previewSection(view: View, p: Preview, form: RetriggerForm): Html {
  const shown = p.items.slice(0, PREVIEW_ROWS);
  return html`<section class="card" aria-labelledby="preview-heading">
<h2 id="preview-heading">Dry run: nothing was sent</h2>
<dl class="stats">
  <div><dt>Items</dt><dd>${num(p.total)}</dd></div>
  <div><dt>Would trigger</dt><dd data-testid="would-trigger">${num(p.would_trigger)}</dd></div>
  <div><dt>Would skip</dt><dd>${num(p.would_skip)}</dd></div>
  <div><dt>Would fail</dt><dd>${num(p.would_fail)}</dd></div>
  <div><dt>Chunks</dt><dd>${num(p.plan.chunks)}</dd></div>
  <div><dt>Estimated time</dt><dd>${p.plan.estimated_duration_ms === 0 ? "—" : duration(p.plan.estimated_duration_ms)}</dd></div>
</dl>
<table class="responsive" aria-label="What each item would do">
<thead><tr><th scope="col">Requested ID</th><th scope="col">Event</th><th scope="col">Outcome</th><th scope="col">Why</th><th scope="col">To</th></tr></thead>
<tbody>${shown.map(
    (i) =>
      html`<tr><td data-label="Requested ID" class="mono">${i.requested_id}</td><td data-label="Event" class="mono">${i.source_event_id ?? ""}</td><td data-label="Outcome"><span class="badge ${i.outcome}">${i.outcome}</span></td><td data-label="Why" class="small">${i.detail ?? i.reason ?? ""}</td><td data-label="To" class="small mono">${i.subscriptions.join(", ")}</td></tr>`,
  )}</tbody>
</table>
${p.items.length > shown.length ? html`<p class="small muted">First ${PREVIEW_ROWS} of ${num(p.items.length)} items shown.</p>` : ""}
${
  p.would_trigger > 0
    ? html`<form method="post" action="/webhooks/retriggers" class="actions">${csrfField(view)}${hiddenFields(form)}<button type="submit" name="mode" value="run" class="primary">Run it: re-send ${num(p.would_trigger)} event${p.would_trigger === 1 ? "" : "s"}</button></form>`
    : html`<p>Nothing would be sent: there is nothing to run.</p>`
}
</section>`;
}

export function retriggersPage(
  view: View,
  data: { jobs: JobView[]; nextCursor: number | null; cursor?: number | undefined },
  extra: { form?: RetriggerForm; error?: string; preview?: Html; flash?: Renderable } = {},
): Html {
  const poll = href("/webhooks/fragments/retriggers", { cursor: data.cursor });
  const content = html`<h1>Re-trigger jobs</h1>
${extra.flash ?? ""}
${extra.preview ?? ""}
${createForm(view, extra.form ?? {}, extra.error)}
<h2 id="jobs-heading">Jobs</h2>
<table class="responsive" aria-labelledby="jobs-heading">
<thead><tr><th scope="col">Job</th><th scope="col">Tenant</th><th scope="col">Event type</th><th scope="col">Status</th><th scope="col">Progress</th><th scope="col">Pending</th><th scope="col">Sent / skipped / failed</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
${jobRows(view, data.jobs, poll)}
</table>
${pager({
  first: data.cursor ? "/webhooks/retriggers" : null,
  next: data.nextCursor ? href("/webhooks/retriggers", { cursor: data.nextCursor }) : null,
  firstLabel: "Newest",
  nextLabel: "Older",
})}`;
  return page({ title: "Re-trigger jobs", view, nav: "retriggers", content });
}

/** One job: progress (polled), settings, the pending IDs and the items that did not go out. */
export function jobLive(view: View, j: JobView, pending: ItemView[], notSent: ItemView[]): Html {
  return html`<section id="job-live" aria-labelledby="job-progress-heading" hx-get="/webhooks/retriggers/${j.job_id}/live" hx-trigger="every 2s" hx-swap="outerHTML">
<div class="card">
<h2 id="job-progress-heading">Progress</h2>
<p><span class="badge ${j.status}" data-testid="job-status">${j.status}</span>${j.interrupted ? " · interrupted: resume runs only its pending items" : ""}</p>
${progress(j)}
<dl class="stats">
  <div><dt>Pending</dt><dd data-testid="job-pending">${num(j.pending)}</dd></div>
  <div><dt>Sent</dt><dd>${num(j.sent)}</dd></div>
  <div><dt>Skipped</dt><dd>${num(j.skipped)}</dd></div>
  <div><dt>Failed</dt><dd>${num(j.failed)}</dd></div>
  <div><dt>Chunks done</dt><dd>${num(j.chunks_done)}</dd></div>
</dl>
${j.last_error ? html`<p class="notice error" role="alert">Last error: ${j.last_error}</p>` : ""}
${jobActions(view, j, `/webhooks/retriggers/${j.job_id}`)}
</div>
<div class="grid">
<div class="card"><h3>Pending IDs${j.pending > pending.length ? ` (first ${pending.length} of ${num(j.pending)})` : ""}</h3>${
    pending.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<pre>${pending.map((i) => i.requested_id).join("\n")}</pre>`
  }</div>
<div class="card"><h3>Skipped and failed</h3>${
    notSent.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<ul class="small">${notSent.map(
          (i) =>
            html`<li><span class="mono">${i.requested_id}</span> <span class="badge ${i.outcome}">${i.outcome}</span> ${i.detail ?? i.reason ?? ""}</li>`,
        )}</ul>`
  }</div>
</div>
</section>`;
}

export function jobPage(
  view: View,
  j: JobView,
  pending: ItemView[],
  notSent: ItemView[],
  flash?: Renderable,
): Html {
  const content = html`<p class="small"><a href="/webhooks/retriggers">← All re-trigger jobs</a></p>
<h1>Re-trigger job ${j.job_id}</h1>
${flash ?? ""}
<div class="card"><p>${j.event_type} for tenant <strong>${j.tenant_id}</strong>: ${selectionText(j)}${j.subscription_id ? html`, to <a class="mono" href="/webhooks/${j.subscription_id}">${j.subscription_id}</a> only` : ", to every matching subscription"}.</p>
<p class="small muted">Batches of ${j.batch_size}, ${j.delay_ms} ms apart${j.skip_delivered_after ? `, skipping aggregates delivered since ${j.skip_delivered_after}` : ""}. Created by ${j.created_by} ${timeAgo(j.created_at, view.now)}; started ${j.started_at ? utc(j.started_at) : "—"}; finished ${j.finished_at ? utc(j.finished_at) : "—"}. <a href="/webhooks/audit?job_id=${j.job_id}">Audit log</a></p></div>
${jobLive(view, j, pending, notSent)}`;
  return page({ title: `Re-trigger job ${j.job_id}`, view, nav: "retriggers", content });
}
