import type { AuditRow } from "../../store/types.ts";
import { timeAgo } from "../format.ts";
import { type Html, href, html } from "../html.ts";
import { page, pager, type View } from "../layout.ts";

export interface AuditFilter {
  subscription_id?: string | undefined;
  job_id?: number | undefined;
  cursor?: number | undefined;
}

/** A before/after diff on one line per field: `status: active → paused`. */
function changes(before: unknown, after: unknown): Html {
  const b = before && typeof before === "object" ? (before as Record<string, unknown>) : {};
  const a = after && typeof after === "object" ? (after as Record<string, unknown>) : {};
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  if (keys.length === 0) return html`<span class="muted">—</span>`;
  return html`<ul class="small mono">${keys.map((k) => {
    const from = k in b ? JSON.stringify(b[k]) : null;
    const to = k in a ? JSON.stringify(a[k]) : null;
    return html`<li>${k}: ${from !== null && to !== null ? `${from} → ${to}` : (from ?? to)}</li>`;
  })}</ul>`;
}

export function auditPage(
  view: View,
  data: { items: AuditRow[]; nextCursor: number | null; filter: AuditFilter },
): Html {
  const f = data.filter;
  const base = { subscription_id: f.subscription_id, job_id: f.job_id };
  const rows =
    data.items.length === 0
      ? html`<tr><td colspan="6">No audit rows match.</td></tr>`
      : data.items.map(
          (r) => html`<tr>
<td data-label="When">${timeAgo(r.at, view.now)}</td>
<td data-label="Actor">${r.actor}</td>
<td data-label="Action"><code>${r.action}</code></td>
<td data-label="Subject">${
            r.subscription_id
              ? html`<a class="mono" href="/webhooks/${r.subscription_id}">${r.subscription_id}</a>`
              : r.job_id !== null
                ? html`<a href="/webhooks/retriggers/${r.job_id}">job ${r.job_id}</a>`
                : html`<span class="muted">${r.tenant_id ?? "—"}</span>`
          }</td>
<td data-label="Reason">${r.reason ?? html`<span class="muted">—</span>`}</td>
<td data-label="Change">${changes(r.before, r.after)}</td>
</tr>`,
        );
  const content = html`<h1>Audit log</h1>
<p class="muted">Every change to a subscription or a re-trigger job, by a person (admin, token) or by Herald itself (system), newest first.</p>
<form class="filters" method="get" action="/webhooks/audit" role="search" aria-label="Filter the audit log">
  <label><span>Subscription ID</span><input type="text" name="subscription_id" value="${f.subscription_id ?? ""}" autocomplete="off"></label>
  <label><span>Job ID</span><input type="text" name="job_id" inputmode="numeric" value="${f.job_id ?? ""}" autocomplete="off"></label>
  <button type="submit">Filter</button>
  ${f.subscription_id || f.job_id ? html`<a href="/webhooks/audit">Clear</a>` : ""}
</form>
<table class="responsive" aria-label="Audit rows">
<thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Subject</th><th scope="col">Reason</th><th scope="col">Change</th></tr></thead>
<tbody>${rows}</tbody>
</table>
${pager({
  first: f.cursor ? href("/webhooks/audit", base) : null,
  next: data.nextCursor ? href("/webhooks/audit", { ...base, cursor: data.nextCursor }) : null,
  firstLabel: "Newest",
  nextLabel: "Older",
})}`;
  return page({ title: "Audit log", view, nav: "audit", content });
}
