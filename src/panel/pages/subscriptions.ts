import type { ErrorKind } from "../../domain/error-kind.ts";
import type { LastOutcome } from "../../service/error-log.ts";
import type { ChartPoint, SeriesSet } from "../../service/samples.ts";
import type { SubscriptionView } from "../../service/subscriptions.ts";
import { sparkline } from "../chart.ts";
import { num, splitDetail, timeAgo, urlWithHost } from "../format.ts";
import { type Html, href, html } from "../html.ts";
import { csrfField, notice, page, pager, type View } from "../layout.ts";

export interface ListFilter {
  tenant?: string | undefined;
  status?: "active" | "paused" | undefined;
  cursor?: string | undefined;
}

export interface ListData {
  items: SubscriptionView[];
  outcomes: Map<string, LastOutcome>;
  series: SeriesSet;
  filter: ListFilter;
  nextCursor: string | null;
}

export const PAUSE_REASONS: Record<string, string> = {
  manual: "paused by an operator",
  pending_ceiling: "pending ceiling reached",
  dlq_ceiling: "DLQ ceiling reached",
};

export function statusBadge(s: { status: string; pause_reason: string | null }): Html {
  return html`<span class="badge ${s.status}">${s.status}</span>${
    s.pause_reason ? html` <span class="small">${PAUSE_REASONS[s.pause_reason] ?? s.pause_reason}</span>` : ""
  }`;
}

export function countVsCeiling(count: number, ceiling: number, what: string): Html {
  return html`<span>${num(count)}</span> <span class="muted">/ ${num(ceiling)}</span><meter min="0" max="${ceiling}" low="${Math.floor(ceiling * 0.5)}" high="${Math.floor(ceiling * 0.9)}" optimum="0" value="${Math.min(count, ceiling)}" aria-label="${what}: ${num(count)} of ${num(ceiling)}"></meter>`;
}

/** Pause or Resume, whichever applies; `back` is where the browser returns afterwards. */
export function pauseResumeForm(view: View, s: SubscriptionView, back: string): Html {
  const action = s.status === "paused" ? "resume" : "pause";
  const label = action === "resume" ? "Resume" : "Pause";
  return html`<form class="inline" method="post" action="/webhooks/${s.subscription_id}/${action}">${csrfField(view)}<input type="hidden" name="back" value="${back}"><button type="submit" class="${action === "resume" ? "primary" : ""}">${label}<span class="visually-hidden"> ${s.subscription_id}</span></button></form>`;
}

export function errorKindBadge(kind: ErrorKind | string | null): Html {
  return kind ? html`<span class="badge failed">${kind}</span>` : html``;
}

function lastError(o: LastOutcome | undefined, view: View): Html {
  if (!o || o.error_kind === null) return html`<span class="muted">none</span>`;
  const { message } = splitDetail(o.error_detail);
  return html`${errorKindBadge(o.error_kind)}${o.error_status === null ? "" : html` <span class="mono">HTTP ${o.error_status}</span>`} ${timeAgo(o.error_at, view.now)}<div class="small">${message ?? o.error_detail ?? ""}</div>`;
}

function lastDelivered(s: SubscriptionView, o: LastOutcome | undefined, view: View): Html {
  if (o?.delivered_event_id != null) {
    return html`event <a href="/webhooks/${s.subscription_id}#deliveries">${o.delivered_event_id}</a><div class="small">${timeAgo(o.delivered_at, view.now)}</div>`;
  }
  if (s.last_delivered_event_id !== null) return html`event ${s.last_delivered_event_id}`;
  return html`<span class="muted">none yet</span>`;
}

export function chartFor(series: SeriesSet, id: string): Html {
  const points: Array<ChartPoint | null> = series.series.get(id) ?? [];
  return sparkline(points, { spanMs: series.to.getTime() - series.from.getTime() });
}

export const CHART_LEGEND = html`<span class="legend" aria-hidden="true"><span class="swatch"></span>pending<span class="swatch dlq"></span>DLQ<span class="swatch paused"></span>paused</span>`;

function row(view: View, s: SubscriptionView, data: ListData, back: string): Html {
  const o = data.outcomes.get(s.subscription_id);
  return html`<tr id="row-${s.subscription_id}" class="${s.status === "paused" ? "is-paused" : ""}">
<td data-label="Subscription"><a href="/webhooks/${s.subscription_id}" class="mono">${s.subscription_id}</a>${s.description ? html`<div class="small muted">${s.description}</div>` : ""}</td>
<td data-label="Tenant">${s.tenant_id}</td>
<td data-label="Endpoint">${urlWithHost(s.url)}</td>
<td data-label="Ordering">${s.ordering}</td>
<td data-label="Status">${statusBadge(s)}</td>
<td data-label="Pending" class="num">${countVsCeiling(s.pending_count, s.pending_ceiling, "pending vs ceiling")}</td>
<td data-label="DLQ" class="num">${countVsCeiling(s.dlq_count, s.dlq_ceiling, "DLQ vs ceiling")}</td>
<td data-label="Last delivered">${lastDelivered(s, o, view)}</td>
<td data-label="Last error">${lastError(o, view)}</td>
<td data-label="Last 24 h">${chartFor(data.series, s.subscription_id)}</td>
<td data-label="Action">${pauseResumeForm(view, s, back)}</td>
</tr>`;
}

export function listQuery(f: ListFilter): Record<string, string | undefined> {
  return { tenant: f.tenant, status: f.status, cursor: f.cursor };
}

/** The table body, polled every few seconds so the numbers stay live. */
export function subscriptionRows(view: View, data: ListData): Html {
  const back = href("/webhooks", listQuery(data.filter));
  const poll = href("/webhooks/fragments/subscriptions", listQuery(data.filter));
  const rows =
    data.items.length === 0
      ? html`<tr><td colspan="11">${
          data.filter.tenant || data.filter.status
            ? "No subscription matches these filters."
            : "No subscriptions yet: create one through the API (POST /v1/subscriptions)."
        }</td></tr>`
      : data.items.map((s) => row(view, s, data, back));
  return html`<tbody id="subscription-rows" hx-get="${poll}" hx-trigger="every 5s" hx-swap="outerHTML">${rows}</tbody>`;
}

export function subscriptionsPage(view: View, data: ListData, flash?: Html): Html {
  const f = data.filter;
  const paused = data.items.filter((s) => s.status === "paused").length;
  const content = html`<h1>Subscriptions</h1>
${flash ?? ""}
<form class="filters" method="get" action="/webhooks" role="search" aria-label="Filter subscriptions">
  <label><span>Tenant</span><input type="text" name="tenant" value="${f.tenant ?? ""}" autocomplete="off"></label>
  <label><span>Status</span><select name="status">
    <option value=""${f.status ? "" : html` selected`}>any</option>
    <option value="active"${f.status === "active" ? html` selected` : ""}>active</option>
    <option value="paused"${f.status === "paused" ? html` selected` : ""}>paused</option>
  </select></label>
  <button type="submit">Filter</button>
  ${f.tenant || f.status ? html`<a href="/webhooks">Clear</a>` : ""}
</form>
<p class="muted">${data.items.length} shown${paused > 0 ? html`, <strong>${paused} paused</strong>` : ""}. Numbers refresh every 5 seconds. ${CHART_LEGEND}</p>
<table class="responsive" aria-label="Subscriptions">
<thead><tr><th scope="col">Subscription</th><th scope="col">Tenant</th><th scope="col">Endpoint</th><th scope="col">Ordering</th><th scope="col">Status</th><th scope="col">Pending / ceiling</th><th scope="col">DLQ / ceiling</th><th scope="col">Last delivered</th><th scope="col">Last error</th><th scope="col">Last 24 h</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
${subscriptionRows(view, data)}
</table>
${pager({
  first: f.cursor ? href("/webhooks", { tenant: f.tenant, status: f.status }) : null,
  next: data.nextCursor
    ? href("/webhooks", { tenant: f.tenant, status: f.status, cursor: data.nextCursor })
    : null,
})}`;
  return page({ title: "Subscriptions", view, nav: "subscriptions", content });
}

export { notice };
