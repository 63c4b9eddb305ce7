/**
 * HTML built with a tagged template that escapes every interpolation unless it is already {@link Html}.
 *
 * @example
 * html`<p title="${userText}">${userText}</p>`   // both escaped
 * html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`   // nested fragments kept as they are
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What may stand in `${…}`: text and numbers are escaped; null, undefined and false render nothing. */
export type Renderable = Html | string | number | bigint | boolean | null | undefined | readonly Renderable[];

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
};

/** Escapes text for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function render(v: Renderable): string {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join("");
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let out = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? "");
  return new Html(out);
}

/** Joins fragments without escaping them again. */
export function join(parts: readonly Renderable[], separator = ""): Html {
  return new Html(parts.map(render).join(separator));
}

/** A URL path with a query string built from the defined, non-empty values. */
export function href(path: string, query: Record<string, string | number | null | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
