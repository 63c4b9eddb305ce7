import { CEILING_MIN, HARD_CAP_ENV } from "../../domain/ceilings.ts";
import { ERROR_KINDS } from "../../domain/error-kind.ts";
import type { HeadView } from "../../service/operator.ts";
import type { SeriesSet } from "../../service/samples.ts";
import type { SubscriptionView } from "../../service/subscriptions.ts";
import type { DeliveryRow } from "../../store/types.ts";
import { sparkline } from "../chart.ts";
import { num, prettyJson, splitDetail, timeAgo, urlWithHost, utc } from "../format.ts";
import { type Html, html, type Renderable } from "../html.ts";
import { csrfField, page, type View } from "../layout.ts";
import {
  CHART_LEGEND,
  countVsCeiling,
  errorKindBadge,
  pauseResumeForm,
  statusBadge,
} from "./subscriptions.ts";

export type FormKey = "drop" | "repair" | "replay_dlq" | "ceilings" | "rotate" | "replay";

export interface DetailData {
  sub: SubscriptionView;
  head: HeadView;
  deliveries: DeliveryRow[];
  series: SeriesSet;
  hardCap: number;
}

/** What an action left to show: a message on top, an error next to its form, the values typed. */
export interface DetailState {
  flash?: Html | undefined;
  errors?: Partial<Record<FormKey, string>> | undefined;
  values?: Record<string, string> | undefined;
  confirmDrop?: { reason: string; event_id: number } | undefined;
}

export const BRANCH_LABELS: Record<string, string> = {
  consumer_unreachable: "Consumer unreachable",
  head_rejected: "Consumer rejects the head event",
  dispatcher_behind: "Dispatcher behind",
  head_terminated: "Head already in the DLQ",
  healthy: "Healthy",
};

function fieldError(state: DetailState, key: FormKey): Html {
  const e = state.errors?.[key];
  return e ? html`<p class="field-error" role="alert" id="${key}-error">${e}</p>` : html``;
}

function described(state: DetailState, key: FormKey): Html {
  return state.errors?.[key] ? html` aria-describedby="${key}-error" aria-invalid="true"` : html``;
}

function value(state: DetailState, name: string, fallback = ""): string {
  return state.values?.[name] ?? fallback;
}

function liveHeadEventId(head: HeadView): number | null {
  const h = head.head;
  if (!h) return null;
  return h.attempts.some((a) => a.status === "pending" || a.status === "in_flight") ? h.event.event_id : null;
}

function attemptItem(a: DeliveryRow, view: View): Html {
  const { message, specifics } = splitDetail(a.error_detail);
  return html`<li class="${a.status}">
<strong>Attempt ${a.attempt_number}</strong> <span class="badge ${a.status}">${a.status}</span>
${errorKindBadge(a.error_kind)}${a.response_status === null ? "" : html` <span class="mono">HTTP ${a.response_status}</span>`}
<div class="small">${
    a.attempted_at
      ? html`sent ${timeAgo(a.attempted_at, view.now)}`
      : html`scheduled ${timeAgo(a.scheduled_at, view.now)}`
  }${a.latency_ms === null ? "" : ` · ${a.latency_ms} ms`}${a.replay_of === null ? "" : ` · replay of delivery ${a.replay_of}`}</div>
${message || specifics ? html`<div class="small">${message ?? ""}${message && specifics ? ": " : ""}<span class="mono">${specifics ?? ""}</span></div>` : ""}
${a.response_body ? html`<details><summary class="small">Response body</summary><pre>${a.response_body}</pre></details>` : ""}
</li>`;
}

/** Counts, chart, diagnosis and head: polled every few seconds. */
export function liveSection(view: View, data: DetailData): Html {
  const { sub, head } = data;
  const d = head.diagnosis;
  const spanMs = data.series.to.getTime() - data.series.from.getTime();
  const h = head.head;
  return html`<section id="live" aria-labelledby="live-heading" hx-get="/webhooks/${sub.subscription_id}/live" hx-trigger="every 3s" hx-swap="outerHTML">
<h2 id="live-heading" class="visually-hidden">Queue now</h2>
<div class="grid">
<div class="card">
<dl class="stats">
  <div><dt>Status</dt><dd data-testid="status">${statusBadge(sub)}</dd></div>
  <div><dt>Pending / ceiling</dt><dd data-testid="pending">${countVsCeiling(sub.pending_count, sub.pending_ceiling, "pending vs ceiling")}</dd></div>
  <div><dt>In flight</dt><dd>${num(head.counts.in_flight)}</dd></div>
  <div><dt>DLQ / ceiling</dt><dd data-testid="dlq">${countVsCeiling(sub.dlq_count, sub.dlq_ceiling, "DLQ vs ceiling")}</dd></div>
  <div><dt>Failed, last hour</dt><dd>${num(head.counts.failed_last_hour)}</dd></div>
  <div><dt>Last delivered event</dt><dd>${sub.last_delivered_event_id ?? html`<span class="muted">—</span>`}</dd></div>
</dl>
<h3>Pending and DLQ, last 24 h</h3>
${sparkline(data.series.series.get(sub.subscription_id) ?? [], { spanMs, width: 320, height: 64 })}
<p>${CHART_LEGEND}</p>
</div>
<div class="card" role="region" aria-labelledby="diagnosis-heading">
<h2 id="diagnosis-heading">Diagnosis: <span class="branch">${BRANCH_LABELS[d.branch] ?? d.branch}</span> <code class="small">${d.branch}</code></h2>
<p>${d.summary}</p>
<h3>What to do</h3>
<ol>${d.actions.map((a) => html`<li>${a}</li>`)}</ol>
</div>
</div>
<div class="card" role="region" aria-labelledby="head-heading">
<h2 id="head-heading">Head of the queue</h2>
${
  h
    ? html`<dl class="stats">
  <div><dt>Event</dt><dd data-testid="head-event">${h.event.event_id}</dd></div>
  <div><dt>Type</dt><dd>${h.event.event_type}</dd></div>
  <div><dt>Aggregate</dt><dd>${h.event.aggregate_id ?? html`<span class="muted">—</span>`}</dd></div>
  <div><dt>Occurred</dt><dd class="small">${utc(h.event.occurred_at)}</dd></div>
</dl>
<div class="grid">
<div><h3>Payload</h3><pre>${prettyJson(h.event.payload)}</pre></div>
<div><h3>Attempts</h3><ol class="timeline" aria-label="Attempts of event ${h.event.event_id}">${h.attempts.map((a) => attemptItem(a, view))}</ol></div>
</div>`
    : html`<p>The queue is empty: nothing is waiting.</p>`
}
</div>
</section>`;
}

/** Recent delivery rows of the subscription, newest first, with a Replay button where it applies. */
export function deliveriesSection(view: View, data: DetailData): Html {
  const id = data.sub.subscription_id;
  const rows =
    data.deliveries.length === 0
      ? html`<tr><td colspan="9">No deliveries yet.</td></tr>`
      : data.deliveries.map((d) => {
          const { message, specifics } = splitDetail(d.error_detail);
          const replayable = d.status === "dlq" || d.status === "delivered";
          return html`<tr>
<td data-label="Delivery" class="mono">${d.delivery_id}</td>
<td data-label="Event" class="mono">${d.event_id}</td>
<td data-label="Attempt" class="num">${d.attempt_number}</td>
<td data-label="Status"><span class="badge ${d.status}">${d.status}</span></td>
<td data-label="When">${timeAgo(d.completed_at ?? d.attempted_at ?? d.scheduled_at, view.now)}</td>
<td data-label="HTTP" class="num">${d.response_status ?? ""}</td>
<td data-label="Error">${errorKindBadge(d.error_kind)} <span class="small">${message ?? ""}${message && specifics ? ": " : ""}${specifics ?? ""}</span></td>
<td data-label="Latency" class="num">${d.latency_ms === null ? "" : `${d.latency_ms} ms`}</td>
<td data-label="Action">${
            replayable
              ? html`<form class="inline" method="post" action="/webhooks/${id}/deliveries/${d.delivery_id}/replay">${csrfField(view)}<button type="submit">Replay<span class="visually-hidden"> delivery ${d.delivery_id}</span></button></form>`
              : ""
          }</td>
</tr>`;
        });
  return html`<section id="deliveries" aria-labelledby="deliveries-heading" hx-get="/webhooks/${id}/deliveries" hx-trigger="every 5s" hx-swap="outerHTML">
<h2 id="deliveries-heading">Recent deliveries</h2>
<table class="responsive" aria-labelledby="deliveries-heading">
<thead><tr><th scope="col">Delivery</th><th scope="col">Event</th><th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">When</th><th scope="col">HTTP</th><th scope="col">Error</th><th scope="col">Latency</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${rows}</tbody>
</table>
<p class="small"><a href="/webhooks/errors?subscription_id=${id}">All errors of this subscription</a> · <a href="/webhooks/audit?subscription_id=${id}">Its audit log</a></p>
</section>`;
}

/** The drop's confirmation step, shown at the top of the page (where the browser lands after the POST). */
function confirmDropBox(view: View, sub: SubscriptionView, c: { reason: string; event_id: number }): Html {
  return html`<div class="notice error" role="alertdialog" aria-labelledby="confirm-heading" aria-describedby="confirm-text">
<h2 id="confirm-heading">Drop event ${c.event_id}?</h2>
<p id="confirm-text">Its pending deliveries go to the DLQ with the reason “${c.reason}”, and the queue moves on to the next event. It can be replayed from the DLQ later.</p>
<form method="post" action="/webhooks/${sub.subscription_id}/drop" class="actions">${csrfField(view)}
<input type="hidden" name="reason" value="${c.reason}"><input type="hidden" name="event_id" value="${c.event_id}"><input type="hidden" name="confirm" value="yes">
<button type="submit" class="danger" autofocus>Confirm drop</button> <a href="/webhooks/${sub.subscription_id}">Cancel</a>
</form></div>`;
}

function dropCard(view: View, data: DetailData, state: DetailState): Html {
  const { sub } = data;
  const headId = liveHeadEventId(data.head);
  let body: Renderable;
  if (sub.ordering !== "ordered") {
    body = html`<p class="muted">Unordered subscriptions have no blocking head: nothing to drop.</p>`;
  } else if (headId === null) {
    body = html`${fieldError(state, "drop")}<p class="muted">No event is waiting at the head of the queue.</p>`;
  } else {
    body = html`<form method="post" action="/webhooks/${sub.subscription_id}/drop" class="stack">${csrfField(view)}
<input type="hidden" name="event_id" value="${headId}">
<label for="drop-reason"><span>Reason (kept in the audit log and on the DLQ row)</span></label>
<textarea id="drop-reason" name="reason" required maxlength="1000"${described(state, "drop")}>${value(state, "reason", state.confirmDrop?.reason ?? "")}</textarea>
${fieldError(state, "drop")}
<button type="submit" class="danger">Drop head event ${headId}…</button>
</form>`;
  }
  return html`<div class="card" role="region" aria-labelledby="drop-heading"><h3 id="drop-heading">Drop the head</h3>${body}</div>`;
}

function repairCard(view: View, data: DetailData, state: DetailState): Html {
  const h = data.head.head;
  if (!h) {
    // The head went away meanwhile: still say why the repair was refused.
    return state.errors?.repair
      ? html`<div class="card" role="region" aria-labelledby="repair-heading"><h3 id="repair-heading">Fix and replay</h3>${fieldError(state, "repair")}</div>`
      : html``;
  }
  return html`<div class="card" role="region" aria-labelledby="repair-heading"><h3 id="repair-heading">Fix and replay event ${h.event.event_id}</h3>
<form method="post" action="/webhooks/${data.sub.subscription_id}/repair" class="stack">${csrfField(view)}
<input type="hidden" name="event_id" value="${h.event.event_id}">
<label for="repair-payload"><span>Corrected payload (JSON; the old one is kept in the audit log)</span></label>
<textarea id="repair-payload" name="payload" rows="6" class="mono"${described(state, "repair")}>${value(state, "payload", prettyJson(h.event.payload))}</textarea>
<label for="repair-reason"><span>Reason (optional)</span></label>
<input type="text" id="repair-reason" name="reason" maxlength="1000" value="${value(state, "repair_reason")}">
${fieldError(state, "repair")}
<button type="submit">Save payload and replay</button>
</form></div>`;
}

function replayDlqCard(view: View, data: DetailData, state: DetailState): Html {
  const kind = value(state, "error_kind");
  return html`<div class="card" role="region" aria-labelledby="replay-heading"><h3 id="replay-heading">Replay from the DLQ</h3>
<form method="post" action="/webhooks/${data.sub.subscription_id}/replay-dlq" class="stack">${csrfField(view)}
<p class="hint">${num(data.sub.dlq_count)} in the DLQ. Every matching DLQ delivery not replayed before is queued again (same message and webhook-id). Empty filters match all.</p>
<label for="replay-since"><span>Failed since (UTC)</span></label><input type="datetime-local" id="replay-since" name="since" step="1" value="${value(state, "since")}">
<label for="replay-until"><span>Failed before (UTC)</span></label><input type="datetime-local" id="replay-until" name="until" step="1" value="${value(state, "until")}">
<label for="replay-kind"><span>Error kind</span></label>
<select id="replay-kind" name="error_kind"><option value="">any</option>${ERROR_KINDS.map(
    (k) => html`<option value="${k}"${kind === k ? html` selected` : ""}>${k}</option>`,
  )}</select>
<label for="replay-events"><span>Event IDs (comma or space separated, optional)</span></label>
<input type="text" id="replay-events" name="event_ids" inputmode="numeric" value="${value(state, "event_ids")}"${described(state, "replay_dlq")}>
${fieldError(state, "replay_dlq")}
<button type="submit">Replay matching DLQ deliveries</button>
</form></div>`;
}

function ceilingsCard(view: View, data: DetailData, state: DetailState): Html {
  const { sub, hardCap } = data;
  return html`<div class="card" role="region" aria-labelledby="ceilings-heading"><h3 id="ceilings-heading">Ceilings</h3>
<form method="post" action="/webhooks/${sub.subscription_id}/ceilings" class="stack">${csrfField(view)}
<p class="hint" id="ceiling-bounds">Each between ${CEILING_MIN} and ${num(hardCap)} (${HARD_CAP_ENV}). Reaching one pauses the subscription.</p>
<label for="pending-ceiling"><span>Pending ceiling</span></label>
<input type="number" id="pending-ceiling" name="pending_ceiling" min="${CEILING_MIN}" max="${hardCap}" step="1" required value="${value(state, "pending_ceiling", String(sub.pending_ceiling))}" aria-describedby="ceiling-bounds">
<label for="dlq-ceiling"><span>DLQ ceiling</span></label>
<input type="number" id="dlq-ceiling" name="dlq_ceiling" min="${CEILING_MIN}" max="${hardCap}" step="1" required value="${value(state, "dlq_ceiling", String(sub.dlq_ceiling))}" aria-describedby="ceiling-bounds">
${fieldError(state, "ceilings")}
<button type="submit">Save ceilings</button>
</form></div>`;
}

function rotateCard(view: View, data: DetailData, state: DetailState): Html {
  const { sub } = data;
  return html`<div class="card" role="region" aria-labelledby="rotate-heading"><h3 id="rotate-heading">Signing secret</h3>
<form method="post" action="/webhooks/${sub.subscription_id}/rotate-secret" class="stack">${csrfField(view)}
<p class="hint">${
    sub.secret_rotation_ends_at
      ? html`A rotation is under way: the previous secret keeps signing until ${utc(sub.secret_rotation_ends_at)}.`
      : "A new secret is shown once. The old one keeps signing alongside it during the overlap, so the consumer can switch."
  }</p>
<label for="rotate-overlap"><span>Overlap, seconds (0 – 2,592,000)</span></label>
<input type="number" id="rotate-overlap" name="overlap_seconds" min="0" max="2592000" step="1" value="${value(state, "overlap_seconds", "86400")}"${described(state, "rotate")}>
${fieldError(state, "rotate")}
<button type="submit">Rotate secret</button>
</form></div>`;
}

export function subscriptionPage(view: View, data: DetailData, state: DetailState = {}): Html {
  const { sub } = data;
  const back = `/webhooks/${sub.subscription_id}`;
  const content = html`<p class="small"><a href="/webhooks">← All subscriptions</a></p>
<h1>Subscription <span class="mono">${sub.subscription_id}</span></h1>
<div class="card">
<p>${statusBadge(sub)} · tenant <strong>${sub.tenant_id}</strong> · ${sub.ordering} · ${urlWithHost(sub.url)}</p>
<p class="small muted">Event types: ${sub.event_types.join(", ")}${sub.description ? ` · ${sub.description}` : ""}</p>
<div class="actions">${pauseResumeForm(view, sub, back)}</div>
</div>
${state.flash ?? ""}
${state.confirmDrop ? confirmDropBox(view, sub, state.confirmDrop) : ""}
${liveSection(view, data)}
<h2>Actions</h2>
<div class="grid">
${dropCard(view, data, state)}
${repairCard(view, data, state)}
${replayDlqCard(view, data, state)}
${ceilingsCard(view, data, state)}
${rotateCard(view, data, state)}
</div>
${deliveriesSection(view, data)}`;
  return page({ title: `Subscription ${sub.subscription_id}`, view, nav: "subscriptions", content });
}
