import type { TokenView } from "../../service/tokens.ts";
import { timeAgo } from "../format.ts";
import { type Html, href, html } from "../html.ts";
import { csrfField, notice, page, pager, type View } from "../layout.ts";

export interface TokenFilter {
  tenant?: string | undefined;
  all?: boolean | undefined;
  cursor?: string | undefined;
}

export interface TokensData {
  items: TokenView[];
  nextCursor: string | null;
  filter: TokenFilter;
  /** A just-created token: its value is on this page only. */
  created?: { token_id: string; tenant_id: string; token: string } | undefined;
  /** A refused action's message, or a done one's confirmation. */
  flash?: Html | undefined;
  /** The create form's fields as typed, after a refusal. */
  form?: { tenant_id?: string | undefined; name?: string | undefined } | undefined;
}

export function tokensQuery(f: TokenFilter): Record<string, string | undefined> {
  return { tenant: f.tenant, all: f.all ? "1" : undefined, cursor: f.cursor };
}

function revokeForm(view: View, t: TokenView, back: string): Html {
  return html`<form class="inline" method="post" action="/webhooks/tokens/${t.token_id}/revoke">${csrfField(view)}<input type="hidden" name="back" value="${back}"><label><span class="visually-hidden">Reason for revoking ${t.token_id}</span><input type="text" name="reason" placeholder="reason" maxlength="1000" autocomplete="off"></label> <button type="submit" class="danger">Revoke<span class="visually-hidden"> ${t.token_id}</span></button></form>`;
}

function row(view: View, t: TokenView, back: string): Html {
  return html`<tr id="token-${t.token_id}" class="${t.revoked_at ? "is-paused" : ""}">
<td data-label="Token" class="mono">${t.token_id}</td>
<td data-label="Tenant">${t.tenant_id}</td>
<td data-label="Name">${t.name ?? html`<span class="muted">—</span>`}</td>
<td data-label="Created">${timeAgo(t.created_at, view.now)}</td>
<td data-label="Status">${t.revoked_at ? html`<span class="badge paused">revoked</span> ${timeAgo(t.revoked_at, view.now)}` : html`<span class="badge active">active</span>`}</td>
<td data-label="Action">${t.revoked_at ? "" : revokeForm(view, t, back)}</td>
</tr>`;
}

/** Tenant tokens: list (never their value), create (the value shown once, here), revoke. */
export function tokensPage(view: View, data: TokensData): Html {
  const f = data.filter;
  const back = href("/webhooks/tokens", tokensQuery(f));
  const rows =
    data.items.length === 0
      ? html`<tr><td colspan="6">${f.tenant ? "No token of this tenant." : "No tokens yet."}</td></tr>`
      : data.items.map((t) => row(view, t, back));
  const created = data.created
    ? notice(
        "ok",
        html`Token <code>${data.created.token_id}</code> for tenant ${data.created.tenant_id} created. Copy its value now: it is not shown again.<pre class="mono" aria-label="Token value">${data.created.token}</pre>`,
      )
    : "";
  const content = html`<h1>Tokens</h1>
<p class="muted">Tenant-scoped API tokens. Herald keeps only a hash of each; a revoked token is refused at once by every process.</p>
${created}${data.flash ?? ""}
<section aria-labelledby="new-token"><h2 id="new-token">New tenant token</h2>
<form method="post" action="/webhooks/tokens">${csrfField(view)}
  <label><span>Tenant</span><input type="text" name="tenant_id" required maxlength="200" value="${data.form?.tenant_id ?? ""}" autocomplete="off"></label>
  <label><span>Name (optional)</span><input type="text" name="name" maxlength="200" value="${data.form?.name ?? ""}" autocomplete="off"></label>
  <button type="submit" class="primary">Create token</button>
</form></section>
<h2>Existing tokens</h2>
<form class="filters" method="get" action="/webhooks/tokens" role="search" aria-label="Filter tokens">
  <label><span>Tenant</span><input type="text" name="tenant" value="${f.tenant ?? ""}" autocomplete="off"></label>
  <label><input type="checkbox" name="all" value="1"${f.all ? html` checked` : ""}> <span>include revoked</span></label>
  <button type="submit">Filter</button>
  ${f.tenant || f.all ? html`<a href="/webhooks/tokens">Clear</a>` : ""}
</form>
<table class="responsive" aria-label="Tokens">
<thead><tr><th scope="col">Token</th><th scope="col">Tenant</th><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${rows}</tbody>
</table>
${pager({
  first: f.cursor ? href("/webhooks/tokens", tokensQuery({ ...f, cursor: undefined })) : null,
  next: data.nextCursor ? href("/webhooks/tokens", tokensQuery({ ...f, cursor: data.nextCursor })) : null,
})}`;
  return page({ title: "Tokens", view, nav: "tokens", content });
}
