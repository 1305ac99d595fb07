import { isTerminal } from '../core/states.js';
import type { Artifact, Task } from '../core/task.js';
import { type NativeEvent, toDelivery } from '../dialects/native/mapper.js';
import type { TaskUrls } from '../results/files.js';
import type { Delivery, LedgerEntry } from '../store/port.js';
import { duration, span, stateBadge, when } from './format.js';
import { html, type Html } from './html.js';
import { liveSection } from './list.js';
import type { Viewer } from './session.js';

/** Everything the task page shows, read at once (`task-routes.ts`). */
export interface TaskView {
  task: Task;
  urls: TaskUrls;
  /** The URL of each input image to show (a stored copy, or the data: URL it came as); null: none to show. */
  inputs: (string | null)[];
  events: NativeEvent[];
  deliveries: Delivery[];
  ledger: LedgerEntry[];
  now: number;
}

/** The URL of each input image: its stored artifact (`input_<n>`) under `/files/`, else a data: URL as sent. */
export function inputUrls(task: Task, artifacts: Artifact[], fileUrl: (name: string) => string): (string | null)[] {
  return task.spec.images.map((url, i) => {
    const a = artifacts.find((x) => x.kind === `input_${i}`);
    const at = a ? a.path.indexOf(task.fileToken) : -1;
    if (a && at >= 0) return fileUrl(a.path.slice(at + task.fileToken.length + 1));
    return url.startsWith('data:image/') ? url : null;
  });
}

const base = (task: Task) => `/dashboard/tasks/${encodeURIComponent(task.id)}`;

function csrfField(viewer: Viewer): Html {
  return html`<input type="hidden" name="_csrf" value="${viewer.csrf}">`;
}

/** The head of the page: state, where it runs, its times and its actions. */
export function summary(v: TaskView, viewer: Viewer): Html {
  const t = v.task;
  const canCancel = !isTerminal(t.state);
  return html`<div id="t-summary" sse-swap="summary" hx-swap="outerHTML" class="card summary">
<div class="head">${stateBadge(t.state)}${t.state === 'generating' ? html` <span class="muted">${t.progress}%</span>` : ''}
${t.state === 'canceled' && t.cancelOutcome ? html` <span class="muted">cancel: ${t.cancelOutcome}</span>` : ''}</div>
<dl class="facts">
<dt>Model</dt><dd>${t.model}</dd>
<dt>Provider</dt><dd>${t.provider}${t.fallback ? html` <span class="badge fallback">fallback</span>` : ''}</dd>
<dt>Dialect</dt><dd>${t.dialect}</dd>
${viewer.operator ? html`<dt>Tenant</dt><dd>${t.tenantId}</dd>` : ''}
<dt>Created</dt><dd>${when(t.createdAt)}</dd>
<dt>Completed</dt><dd>${t.completedAt === null ? '–' : when(t.completedAt)}</dd>
<dt>Duration</dt><dd>${duration(t, v.now)}</dd>
<dt>Attempts</dt><dd>${t.attemptCount} (retries ${t.retryCount})</dd>
${t.lastError ? html`<dt>Last error</dt><dd class="error">${t.lastError}</dd>` : ''}
</dl>
<div class="actions">
${canCancel ? html`<form method="post" action="${base(t)}/cancel" class="inline">${csrfField(viewer)}<button type="submit" class="danger">Cancel</button></form>` : ''}
<a class="button" href="${base(t)}/json" download>Download JSON</a>
</div>
</div>`;
}

/** A player for every rendition there is (the `/files/` URLs answer Range requests). */
export function outputs(v: TaskView): Html {
  const u = v.urls;
  const renditions: [string, string | null][] = [['720p', u.video], ['1080p', u.hd1080], ['4k', u.uhd]];
  if (u.upsampled && u.upsampled !== u.hd1080 && u.upsampled !== u.uhd) renditions.push([v.task.spec.resolution, u.upsampled]);
  const there = renditions.filter((r): r is [string, string] => r[1] !== null);
  return html`<section id="t-outputs" sse-swap="outputs" hx-swap="outerHTML" class="card">
<h2>Video</h2>
${there.length === 0
  ? html`<p class="muted">${isTerminal(v.task.state) ? 'No video.' : 'Not made yet.'}</p>`
  : html`<div class="videos">${there.map(([label, url]) => html`<figure><video controls preload="metadata" src="${url}" data-rendition="${label}"></video><figcaption>${label} · <a href="${url}">file</a></figcaption></figure>`)}</div>`}
</section>`;
}

/** What the task was asked to make. */
export function inputs(v: TaskView): Html {
  const s = v.task.spec;
  return html`<section class="card">
<h2>Input</h2>
<p class="prompt-full">${s.prompt}</p>
<dl class="facts">
<dt>Aspect</dt><dd>${s.aspectRatio}</dd><dt>Length</dt><dd>${s.durationSeconds} s</dd><dt>Resolution</dt><dd>${s.upsample ? s.resolution : '720p'}</dd>
<dt>Mode</dt><dd>${s.mode}</dd><dt>Seed</dt><dd>${s.seed}</dd>
</dl>
${v.inputs.length ? html`<div class="thumbs">${v.inputs.map((url, i) => (url ? html`<img src="${url}" alt="input image ${i + 1}" loading="lazy">` : html`<span class="muted">image ${i + 1} (not stored)</span>`))}</div>` : ''}
</section>`;
}

/** One line of an event's detail: its fields as `key: value`, values as compact JSON. */
function detailOf(d: Record<string, unknown> | null): string {
  if (!d) return '';
  return Object.entries(d)
    .filter(([, x]) => x !== null && x !== undefined)
    .map(([k, x]) => `${k}: ${typeof x === 'string' ? x : JSON.stringify(x)}`)
    .join(' · ')
    .slice(0, 600);
}

/** The audit trail, oldest first, each entry at its time since the task was created. */
export function timeline(v: TaskView): Html {
  const t0 = v.task.createdAt;
  return html`<section id="t-timeline" sse-swap="timeline" hx-swap="outerHTML" class="card">
<h2>Timeline</h2>
<ol class="timeline">
${v.events.map((e) => {
  const at = Date.parse(e.at);
  const what = e.kind === 'state' || e.kind === 'created' ? html`${e.from ? html`${e.from} → ` : ''}<b>${e.to}</b>` : html`<b>${e.kind}</b>`;
  return html`<li class="ev ev-${e.kind}"><time datetime="${e.at}" title="${when(at)}">+${span(at - t0)}</time> <span class="what">${what}</span> <span class="actor muted">${e.actor}</span><div class="detail">${detailOf(e.detail)}</div></li>`;
})}
</ol>
</section>`;
}

/** Credits: reserved at create, charged and refunded by the close (the ledger of this task). */
export function credits(v: TaskView): Html {
  const reserved = -v.ledger.filter((e) => e.kind === 'reserve').reduce((n, e) => n + e.amount, 0);
  const closes = v.ledger.filter((e) => e.kind === 'settle' || e.kind === 'refund');
  const charged = closes.reduce((n, e) => n + (e.charged ?? 0), 0);
  const refunded = closes.reduce((n, e) => n + e.amount, 0);
  return html`<section id="t-credits" sse-swap="credits" hx-swap="outerHTML" class="card">
<h2>Credits</h2>
${v.ledger.length === 0
  ? html`<p class="muted">Not metered: this task costs nothing.</p>`
  : html`<dl class="facts"><dt>Reserved</dt><dd>${reserved}</dd><dt>Charged</dt><dd>${closes.length ? charged : '–'}</dd><dt>Refunded</dt><dd>${closes.length ? refunded : '–'}</dd></dl>
<table class="small"><thead><tr><th>When</th><th>Entry</th><th>Item</th><th class="num">Amount</th></tr></thead><tbody>
${v.ledger.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.kind}</td><td>${e.item ?? ''}</td><td class="num">${e.amount}</td></tr>`)}
</tbody></table>`}
</section>`;
}

/** The callbacks the task owes or owed, each with a Resend button. */
export function deliveries(v: TaskView, viewer: Viewer): Html {
  return html`<section id="t-deliveries" sse-swap="deliveries" hx-swap="outerHTML" class="card">
<h2>Webhook deliveries</h2>
${v.deliveries.length === 0
  ? html`<p class="muted">None: the task has no callback URL and its key no endpoint for it.</p>`
  : html`<table class="small"><thead><tr><th>#</th><th>URL</th><th>Status</th><th>Tries</th><th>Last answer</th><th></th></tr></thead><tbody>
${v.deliveries.map((d) => {
  const w = toDelivery(d);
  return html`<tr><td title="${w.webhook_id}">${d.id}</td><td class="url">${d.url}</td><td><span class="badge delivery-${d.status}">${d.status}</span></td><td>${d.attempts}</td>
<td>${d.lastStatus ?? ''}${d.lastError ? html` <span class="muted">${d.lastError.slice(0, 120)}</span>` : ''}</td>
<td><form method="post" action="${base(v.task)}/deliveries/${d.id}/resend" class="inline">${csrfField(viewer)}<button type="submit">Resend</button></form></td></tr>`;
})}
</tbody></table>`}
</section>`;
}

/** The page's live part: everything that changes while the task runs. */
export function taskSection(v: TaskView, viewer: Viewer, live: boolean): Html {
  return liveSection({
    id: 'task',
    streamUrl: `${base(v.task)}/stream`,
    switchUrl: `${base(v.task)}/live`,
    live,
    title: html`<h1 class="task-id">${v.task.id}</h1>`,
    body: html`<div class="grid">
<div class="col">${summary(v, viewer)}${outputs(v)}${inputs(v)}</div>
<div class="col">${timeline(v)}${credits(v)}${deliveries(v, viewer)}</div>
</div>`,
  });
}
