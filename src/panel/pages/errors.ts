import { ERROR_KINDS } from "../../domain/error-kind.ts";
import type { ErrorLogRow } from "../../service/error-log.ts";
import { splitDetail, timeAgo } from "../format.ts";
import { type Html, href, html } from "../html.ts";
import { page, pager, type View } from "../layout.ts";
import { errorKindBadge } from "./subscriptions.ts";

export interface ErrorsFilter {
  subscription_id?: string | undefined;
  error_kind?: string | undefined;
  status?: "failed" | "dlq" | undefined;
  cursor?: number | undefined;
}

export function errorsPage(
  view: View,
  data: { items: ErrorLogRow[]; nextCursor: number | null; filter: ErrorsFilter },
): Html {
  const f = data.filter;
  const base = { subscription_id: f.subscription_id, error_kind: f.error_kind, status: f.status };
  const rows =
    data.items.length === 0
      ? html`<tr><td colspan="9">No failed or DLQ deliveries match.</td></tr>`
      : data.items.map((d) => {
          const { message, specifics } = splitDetail(d.error_detail);
          return html`<tr>
<td data-label="When">${timeAgo(d.completed_at ?? d.attempted_at, view.now)}</td>
<td data-label="Subscription"><a class="mono" href="/webhooks/${d.subscription_id}">${d.subscription_id}</a><div class="small muted">${d.tenant_id}</div></td>
<td data-label="Event" class="mono">${d.event_id}<div class="small muted">${d.event_type}</div></td>
<td data-label="Attempt" class="num">${d.attempt_number}</td>
<td data-label="Status"><span class="badge ${d.status}">${d.status}</span></td>
<td data-label="Error kind">${errorKindBadge(d.error_kind)}</td>
<td data-label="HTTP" class="num">${d.response_status ?? ""}</td>
<td data-label="Message">${message ?? html`<span class="muted">—</span>`}</td>
<td data-label="Specifics" class="small mono">${specifics ?? ""}</td>
</tr>`;
        });
  const content = html`<h1>Error log</h1>
<p class="muted">Failed attempts and DLQ deliveries, newest first. The message is the catalog's; the specifics say what this attempt met.</p>
<form class="filters" method="get" action="/webhooks/errors" role="search" aria-label="Filter errors">
  <label><span>Subscription ID</span><input type="text" name="subscription_id" value="${f.subscription_id ?? ""}" autocomplete="off"></label>
  <label><span>Error kind</span><select name="error_kind"><option value="">any</option>${ERROR_KINDS.map(
    (k) => html`<option value="${k}"${f.error_kind === k ? html` selected` : ""}>${k}</option>`,
  )}</select></label>
  <label><span>Status</span><select name="status">
    <option value="">failed and DLQ</option>
    <option value="failed"${f.status === "failed" ? html` selected` : ""}>failed</option>
    <option value="dlq"${f.status === "dlq" ? html` selected` : ""}>DLQ</option>
  </select></label>
  <button type="submit">Filter</button>
  ${f.subscription_id || f.error_kind || f.status ? html`<a href="/webhooks/errors">Clear</a>` : ""}
</form>
<table class="responsive" aria-label="Failed and DLQ deliveries">
<thead><tr><th scope="col">When</th><th scope="col">Subscription</th><th scope="col">Event</th><th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Error kind</th><th scope="col">HTTP</th><th scope="col">Message</th><th scope="col">Specifics</th></tr></thead>
<tbody>${rows}</tbody>
</table>
${pager({
  first: f.cursor ? href("/webhooks/errors", base) : null,
  next: data.nextCursor ? href("/webhooks/errors", { ...base, cursor: data.nextCursor }) : null,
  firstLabel: "Newest",
  nextLabel: "Older",
})}`;
  return page({ title: "Error log", view, nav: "errors", content });
}
