import { STATES, type TaskState } from '../core/states.js';
import type { Task } from '../core/task.js';
import type { TaskFilter } from '../store/port.js';
import { ago, duration, stateBadge } from './format.js';
import { html, type Html, query } from './html.js';
import type { Viewer } from './session.js';
import { asciiLower } from '../store/sql/columns.js';

/** Tasks per page of the list. */
export const PAGE_SIZE = 50;

/** The list's query string, as sent: every filter lives here, so a link is the view. */
export interface ListQuery {
  state: TaskState[];
  model?: string;
  provider?: string;
  dialect?: string;
  /** `YYYY-MM-DDTHH:MM` (a `datetime-local` input), read as UTC. */
  from?: string;
  to?: string;
  /** A task id, or part of a prompt. */
  q?: string;
  /** Operators only: one tenant's tasks. */
  tenant?: string;
  /** The last task of the page before (a cursor). */
  after?: string;
  /** Tasks per page, 1 to 100 (default `PAGE_SIZE`). */
  limit?: string;
}

const one = (v: unknown): string | undefined => {
  const s = Array.isArray(v) ? v[0] : v;
  if (typeof s !== 'string') return undefined;
  const t = s.trim();
  return t && t.length <= 200 ? t : undefined;
};

/** Reads the list's query string; unknown states and malformed values are left out. */
export function readListQuery(raw: Record<string, unknown>): ListQuery {
  const states = (Array.isArray(raw.state) ? raw.state : raw.state === undefined ? [] : [raw.state]).flatMap((s) => String(s).split(','));
  const q: ListQuery = { state: [...new Set(states.filter((s): s is TaskState => (STATES as readonly string[]).includes(s)))].sort() };
  for (const k of ['model', 'provider', 'dialect', 'q', 'tenant', 'after'] as const) {
    const v = one(raw[k]);
    if (v !== undefined) q[k] = v;
  }
  const limit = one(raw.limit);
  if (limit !== undefined && /^([1-9][0-9]?|100)$/.test(limit)) q.limit = limit;
  for (const k of ['from', 'to'] as const) {
    const v = one(raw[k]);
    if (v !== undefined && timeOf(v) !== undefined) q[k] = v;
  }
  return q;
}

/** A `datetime-local` value (or any ISO time) in ms, read as UTC when it names no zone. */
function timeOf(v: string): number | undefined {
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The store's filter of a list query (run by the store, never on the page). */
export function filterOf(q: ListQuery): TaskFilter {
  const to = q.to === undefined ? undefined : timeOf(q.to);
  return {
    ...(q.state.length ? { states: q.state } : {}),
    ...(q.model ? { model: q.model } : {}),
    ...(q.provider ? { provider: q.provider } : {}),
    ...(q.dialect ? { dialect: q.dialect } : {}),
    ...(q.from ? { createdFrom: timeOf(q.from)! } : {}),
    // A `to` of minutes takes in its whole minute.
    ...(to !== undefined ? { createdTo: q.to!.length <= 16 ? to + 59_999 : to } : {}),
    ...(q.q ? { search: q.q } : {}),
  };
}

/** Whether a task (one that changed) belongs in a list of this filter: the store's filter, in memory. */
export function matches(task: Task, f: TaskFilter): boolean {
  if (f.states && !f.states.includes(task.state)) return false;
  if (f.model !== undefined && task.model !== f.model) return false;
  if (f.provider !== undefined && task.provider !== f.provider) return false;
  if (f.dialect !== undefined && task.dialect !== f.dialect) return false;
  if (f.createdFrom !== undefined && task.createdAt < f.createdFrom) return false;
  if (f.createdTo !== undefined && task.createdAt > f.createdTo) return false;
  if (f.search !== undefined && task.id !== f.search && !asciiLower(task.spec.prompt).includes(asciiLower(f.search))) return false;
  return true;
}

/** The query string of a list query, the cursor left out unless `after` is given. */
export function listHref(q: ListQuery, after?: string): string {
  const { after: _drop, ...rest } = q;
  return `/dashboard/tasks${query({ ...rest, state: q.state, ...(after ? { after } : {}) })}`;
}

/** One row of the list; `sse-swap` names the event that replaces it in place. */
export function row(task: Task, now: number, viewer: Viewer): Html {
  return html`<tr id="task-${task.id}" sse-swap="task-${task.id}" hx-swap="outerHTML">
<td>${stateBadge(task.state)}${task.state === 'generating' && task.progress > 0 ? html` <span class="muted">${task.progress}%</span>` : ''}</td>
<td class="id"><a href="/dashboard/tasks/${encodeURIComponent(task.id)}">${task.id}</a><div class="prompt">${task.spec.prompt.slice(0, 120)}</div></td>
${viewer.operator ? html`<td class="tenant">${task.tenantId}</td>` : ''}
<td>${task.model}</td>
<td>${task.provider}${task.fallback ? html` <span class="badge fallback" title="served by a route other than the first">fallback</span>` : ''}</td>
<td>${task.dialect}</td>
<td>${ago(task.createdAt, now)}</td>
<td>${duration(task, now)}</td>
<td class="num">${task.charge ? task.charge.credits : '–'}</td>
</tr>`;
}

export interface ListView {
  q: ListQuery;
  tasks: Task[];
  hasMore: boolean;
  models: string[];
  providers: string[];
  dialects: string[];
  tenants: string[];
  /** The page's SSE stream, or undefined when paused. */
  live: boolean;
  now: number;
}

/** The filters form: a plain GET form, so every filter is in the URL and a link is the view. */
function filters(v: ListView, viewer: Viewer): Html {
  const q = v.q;
  const opts = (values: string[], chosen: string | undefined) => [html`<option value="">any</option>`, ...values.map((x) => html`<option${x === chosen ? html` selected` : ''}>${x}</option>`)];
  return html`<form method="get" action="/dashboard/tasks" class="filters" role="search">
<label class="grow">Search <input type="search" name="q" value="${q.q ?? ''}" placeholder="task id or part of a prompt"></label>
<fieldset class="states"><legend>State</legend>
${STATES.map((s) => html`<label class="check"><input type="checkbox" name="state" value="${s}"${q.state.includes(s) ? html` checked` : ''}> ${s}</label>`)}
</fieldset>
<label>Model <select name="model">${opts(v.models, q.model)}</select></label>
<label>Provider <select name="provider">${opts(v.providers, q.provider)}</select></label>
<label>Dialect <select name="dialect">${opts(v.dialects, q.dialect)}</select></label>
${viewer.operator ? html`<label>Tenant <select name="tenant">${opts(v.tenants, q.tenant)}</select></label>` : ''}
<label>Created from (UTC) <input type="datetime-local" name="from" value="${q.from ?? ''}"></label>
<label>to <input type="datetime-local" name="to" value="${q.to ?? ''}"></label>
${q.limit ? html`<input type="hidden" name="limit" value="${q.limit}">` : ''}
<div class="actions"><button type="submit">Apply</button> <a href="/dashboard/tasks">Clear</a></div>
</form>`;
}

/**
 * A part of a page that follows one SSE stream: live, it holds `sse-connect` (its children swap
 * themselves in on their events); paused, it has none, and its stream is closed. The switch
 * fetches the part anew, live or paused (`switchUrl` + `live=0|1`), in its place.
 */
export function liveSection(o: { id: string; streamUrl: string; switchUrl: string; live: boolean; body: Html; title?: Html }): Html {
  const sw = `${o.switchUrl}${o.switchUrl.includes('?') ? '&' : '?'}live=${o.live ? 0 : 1}`;
  const toggle = html`<div class="live ${o.live ? 'on' : 'paused'}"><span class="dot"></span> ${o.live ? 'Live' : 'Paused'} <button type="button" class="switch" hx-get="${sw}" hx-target="#${o.id}" hx-swap="outerHTML">${o.live ? 'Pause' : 'Resume'}</button></div>`;
  return html`<section id="${o.id}"${o.live ? html` sse-connect="${o.streamUrl}" sse-close="signed-out"` : ''}>
${o.live ? html`<div sse-swap="signed-out" hx-swap="innerHTML"></div>` : ''}<div class="title-row">${o.title ?? ''}${toggle}</div>
${o.body}
</section>`;
}

/** The list's live part: the table and the pager. */
export function listSection(v: ListView, viewer: Viewer, since: number): Html {
  const q = v.q;
  const own = listHref(q, q.after).slice('/dashboard/tasks'.length);
  const sep = own ? `${own}&` : '?';
  return liveSection({
    id: 'list',
    streamUrl: `/dashboard/tasks/stream${sep}since=${since}`,
    switchUrl: `/dashboard/tasks/live${own}`,
    live: v.live,
    title: html`<span class="muted">Newest first${q.after ? ', older page' : ''}</span>`,
    body: html`<div class="table-wrap">
<table class="tasks">
<thead><tr><th>State</th><th>Task</th>${viewer.operator ? html`<th>Tenant</th>` : ''}<th>Model</th><th>Provider</th><th>Dialect</th><th>Age</th><th>Duration</th><th class="num">Credits</th></tr></thead>
<tbody id="rows"${q.after ? '' : html` sse-swap="new" hx-swap="afterbegin"`}>
${v.tasks.map((t) => row(t, v.now, viewer))}
</tbody>
</table>
${v.tasks.length === 0 ? html`<p class="empty">No task matches.</p>` : ''}
</div>
<nav class="pager">${q.after ? html`<a href="${listHref(q)}">← Newest</a>` : ''}${v.hasMore ? html` <a rel="next" href="${listHref(q, v.tasks.at(-1)!.id)}">Older →</a>` : ''}</nav>`,
  });
}

export function listBody(v: ListView, viewer: Viewer, since: number): Html {
  return html`<h1>Tasks</h1>
${filters(v, viewer)}
${listSection(v, viewer, since)}`;
}
