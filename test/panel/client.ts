import { ADMIN } from "../support/herald.ts";

export interface PanelResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** A browser-less panel user: plain fetch, keeping the session cookie by hand. */
export class PanelClient {
  cookie: string | null = null;
  constructor(readonly base: string) {}

  async get(path: string, headers: Record<string, string> = {}): Promise<PanelResponse> {
    const res = await fetch(`${this.base}${path}`, {
      redirect: "manual",
      headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...headers },
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  async post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await fetch(`${this.base}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...headers,
      },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  /** Logs in with the admin token and keeps the session cookie. */
  async login(token = ADMIN): Promise<PanelResponse> {
    const r = await this.post("/webhooks/login", { token, next: "/webhooks" });
    const set = r.headers.get("set-cookie");
    if (set) this.cookie = set.split(";")[0]!;
    return r;
  }

  /** The CSRF token the panel put in a page's forms. */
  async csrf(path = "/webhooks"): Promise<string> {
    const page = await this.get(path);
    const m = /name="_csrf" value="([^"]+)"/.exec(page.text);
    if (!m?.[1]) throw new Error(`no CSRF token on ${path} (status ${page.status})`);
    return m[1];
  }

  /** Posts a form the way the page would: with the session's CSRF token. */
  async submit(path: string, form: Record<string, string>, from = "/webhooks"): Promise<PanelResponse> {
    return this.post(path, { _csrf: await this.csrf(from), ...form });
  }
}

/** The page's text with tags removed and whitespace collapsed (what a reader sees, roughly). */
export function visibleText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/g, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}
