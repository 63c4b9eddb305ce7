import { type Html, html, type Renderable } from "./html.ts";

/** What every signed-in page needs: the session's CSRF token and the time it was rendered. */
export interface View {
  csrf: string;
  now: Date;
}

export type NavKey = "subscriptions" | "errors" | "retriggers" | "tokens" | "audit";

const NAV: ReadonlyArray<{ key: NavKey; label: string; path: string }> = [
  { key: "subscriptions", label: "Subscriptions", path: "/webhooks" },
  { key: "errors", label: "Errors", path: "/webhooks/errors" },
  { key: "retriggers", label: "Re-triggers", path: "/webhooks/retriggers" },
  { key: "tokens", label: "Tokens", path: "/webhooks/tokens" },
  { key: "audit", label: "Audit log", path: "/webhooks/audit" },
];

/**
 * htmx settings: no inline styles or eval (the CSP forbids both), and error answers (4xx/5xx) are
 * swapped in like any other, so a refused action shows its message where the form was.
 */
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  historyCacheSize: 0,
  reportValidityOfForms: true,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "[45]..", swap: true, error: true },
  ],
});

/** The hidden CSRF field every state-changing form carries. */
export function csrfField(view: View): Html {
  return html`<input type="hidden" name="_csrf" value="${view.csrf}">`;
}

export function document(title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${title} · Herald</title>
<link rel="stylesheet" href="/webhooks/assets/panel.css">
<script src="/webhooks/assets/htmx.min.js" defer></script>
</head>
${body}
</html>`;
}

/** A signed-in page: header with navigation and logout, then the content in `<main>`. */
export function page(opts: { title: string; view: View; nav?: NavKey; content: Renderable }): Html {
  const links = NAV.map(
    (n) =>
      html`<li><a href="${n.path}"${opts.nav === n.key ? html` aria-current="page"` : ""}>${n.label}</a></li>`,
  );
  return document(
    opts.title,
    html`<body hx-boost="true">
<a class="skip" href="#main">Skip to content</a>
<header class="top" role="banner">
  <a class="brand" href="/webhooks">Herald</a>
  <nav aria-label="Main"><ul>${links}</ul></nav>
  <form method="post" action="/webhooks/logout">${csrfField(opts.view)}<button type="submit">Log out</button></form>
</header>
<main id="main" tabindex="-1">
${opts.content}
</main>
</body>`,
  );
}

/** A result of an action: `ok` is announced politely, `error` at once. */
export function notice(kind: "ok" | "error", content: Renderable): Html {
  return kind === "ok"
    ? html`<div class="notice ok" role="status">${content}</div>`
    : html`<div class="notice error" role="alert">${content}</div>`;
}

/** Links of a cursor-paged list: back to the first page, and on to the next. */
export function pager(opts: {
  first?: string | null;
  next?: string | null;
  firstLabel?: string;
  nextLabel?: string;
}): Html {
  if (!opts.first && !opts.next) return html``;
  return html`<nav class="pager" aria-label="Pages">${opts.first ? html`<a href="${opts.first}">« ${opts.firstLabel ?? "First page"}</a>` : ""}${
    opts.next ? html`<a href="${opts.next}" rel="next">${opts.nextLabel ?? "Next page"} »</a>` : ""
  }</nav>`;
}
