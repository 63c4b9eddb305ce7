import { type Html, html } from "../html.ts";
import { document, notice, page, type View } from "../layout.ts";

export function loginPage(opts: { next: string; error?: string; loggedOut?: boolean }): Html {
  return document(
    "Log in",
    html`<body>
<main id="main" class="login">
<h1>Herald</h1>
${opts.error ? notice("error", opts.error) : ""}
${opts.loggedOut ? notice("ok", "You are logged out.") : ""}
<form method="post" action="/webhooks/login" class="stack card" aria-labelledby="login-heading">
<h2 id="login-heading">Log in to the operator panel</h2>
<input type="hidden" name="next" value="${opts.next}">
<label for="token"><span>Admin token</span></label>
<input type="password" id="token" name="token" required autocomplete="current-password" autofocus>
<p class="hint">The value of HERALD_ADMIN_TOKEN (or, on the embedded store, the file admin-token in the data directory).</p>
<button type="submit" class="primary">Log in</button>
</form>
</main>
</body>`,
  );
}

/** A page that says what went wrong; with a session it keeps the navigation. */
export function problemPage(view: View | null, title: string, message: string): Html {
  const content = html`<h1>${title}</h1>${notice("error", message)}<p><a href="/webhooks">Back to the subscriptions</a></p>`;
  if (view) return page({ title, view, content });
  return document(title, html`<body><main id="main" class="login">${content}</main></body>`);
}

/** The same, as a fragment for a polled region (the region shows the message instead of its numbers). */
export function problemFragment(message: string): Html {
  return html`<div class="notice error" role="alert">${message}</div>`;
}
