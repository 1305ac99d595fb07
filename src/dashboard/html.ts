/**
 * The one way the dashboard writes HTML: `html` is a tagged template whose every interpolated
 * value is escaped, unless it is itself `Html` (made by `html` or, for markup this code wrote,
 * `raw`). Arrays are joined; `null`, `undefined` and `false` write nothing.
 *
 * @example
 *   html`<td>${task.spec.prompt}</td>` // a prompt `<script>` is written as `&lt;script&gt;`
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '\r': '&#13;' };

/**
 * Text made safe inside an element or a quoted attribute. A carriage return is written as its
 * character reference too: sent over SSE, a bare one would end the line it is on.
 */
export function escape(s: string): string {
  return s.replace(/[&<>"'\r]/g, (c) => ESCAPES[c]!);
}

export type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function write(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(write).join('');
  return escape(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += write(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup written by this code (an SVG built from numbers), never text from a request. */
export function raw(text: string): Html {
  return new Html(text);
}

/** A query string from fields, empty ones left out: `?a=1&b=x` (or ''). */
export function query(fields: Record<string, string | readonly string[] | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) {
    for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined && one !== '') q.append(k, one as string);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
