import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app/context.js';
import { STATES } from '../core/states.js';
import type { GroupStats, TaskStats } from '../store/port.js';
import { escape, html, type Html, raw } from './html.js';
import { page } from './layout.js';
import { HIDE, sendHtml, tenants, viewerOf } from './scope.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The bar colour of each state (the badges' colours, `dashboard.css`). */
const COLOURS: Record<string, string> = {
  queued: '#8a94a6', fetching: '#5b8def', submitting: '#5b8def', generating: '#3b6fd8', generated: '#3b6fd8', upsampling: '#6a5acd',
  succeeded: '#2e9d5b', failed: '#d64545', canceled: '#c98a1b', expired: '#9aa0a6',
};

/**
 * A horizontal bar chart as inline SVG, drawn here from numbers only (labels are escaped): one
 * bar per entry, its value at its end. No script, no library.
 */
export function barChart(title: string, bars: { label: string; value: number; colour?: string; note?: string }[]): Html {
  const rowH = 22;
  const labelW = 120;
  const width = 500;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const h = Math.max(1, bars.length) * rowH + 4;
  const body = bars
    .map((b, i) => {
      const y = i * rowH + 2;
      const w = Math.round(((width - labelW - 120) * b.value) / max);
      return `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end" class="lbl">${escape(b.label)}</text>`
        + `<rect x="${labelW}" y="${y + 3}" width="${Math.max(w, b.value > 0 ? 2 : 0)}" height="${rowH - 8}" rx="2" fill="${b.colour ?? '#3b6fd8'}"></rect>`
        + `<text x="${labelW + w + 6}" y="${y + 15}" class="val">${escape(b.note ?? String(b.value))}</text>`;
    })
    .join('');
  return html`<figure class="chart"><figcaption>${title}</figcaption>${raw(`<svg role="img" aria-label="${escape(title)}" viewBox="0 0 ${width} ${h}" width="100%" preserveAspectRatio="xMinYMin meet">${body}</svg>`)}</figure>`;
}

const seconds = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`);
const rate = (g: GroupStats) => (g.ended === 0 ? 0 : Math.round((100 * g.succeeded) / g.ended));

function groupTable(title: string, groups: GroupStats[]): Html {
  return html`<section class="card">
<h2>${title}</h2>
${groups.length === 0
  ? html`<p class="muted">No task ended in the last day.</p>`
  : html`${barChart('Success rate, last day (%)', groups.map((g) => ({ label: g.name, value: rate(g), colour: '#2e9d5b', note: `${rate(g)}% of ${g.ended}` })))}
${barChart('p95 time to result, last day (s)', groups.map((g) => ({ label: g.name, value: Math.round((g.p95Ms ?? 0) / 100) / 10, colour: '#3b6fd8', note: seconds(g.p95Ms) })))}
<table class="small"><thead><tr><th>Name</th><th class="num">Ended</th><th class="num">Succeeded</th><th class="num">Rate</th><th class="num">p50</th><th class="num">p95</th></tr></thead><tbody>
${groups.map((g) => html`<tr><td>${g.name}</td><td class="num">${g.ended}</td><td class="num">${g.succeeded}</td><td class="num">${rate(g)}%</td><td class="num">${seconds(g.p50Ms)}</td><td class="num">${seconds(g.p95Ms)}</td></tr>`)}
</tbody></table>`}
</section>`;
}

/** An operator's choice of tenant (a plain GET form: the choice is in the URL). */
function tenantPicker(p: { tenants: string[]; chosen: string | undefined }): Html {
  return html`<form method="get" action="/dashboard" class="filters">
<label>Tenant <select name="tenant"><option value="">every tenant</option>${p.tenants.map((t) => html`<option${t === p.chosen ? html` selected` : ''}>${t}</option>`)}</select></label>
<div class="actions"><button type="submit">Show</button></div>
</form>`;
}

export function overviewBody(s: TaskStats, scope: string, picker?: { tenants: string[]; chosen: string | undefined }): Html {
  const of = (w: 'hour' | 'day') => STATES.map((st) => ({ label: st, value: s.states.find((x) => x.state === st)?.[w] ?? 0, colour: COLOURS[st] ?? '#3b6fd8' })).filter((b) => b.value > 0);
  const total = (w: 'hour' | 'day') => s.states.reduce((n, x) => n + x[w], 0);
  return html`<h1>Overview</h1>
<p class="muted">${scope}</p>
${picker ? tenantPicker(picker) : ''}
<div class="stats">
<div class="stat card"><span class="n">${total('hour')}</span> tasks in the last hour</div>
<div class="stat card"><span class="n">${total('day')}</span> tasks in the last day</div>
<div class="stat card"><span class="n">${s.creditsCharged}</span> credits spent in the last day</div>
</div>
<div class="grid">
<section class="card"><h2>Tasks by state</h2>
${of('hour').length ? barChart('Last hour', of('hour')) : html`<p class="muted">No task in the last hour.</p>`}
${of('day').length ? barChart('Last day', of('day')) : html`<p class="muted">No task in the last day.</p>`}
</section>
${groupTable('Per model', s.models)}
${groupTable('Per provider', s.providers)}
</div>`;
}

/** `/dashboard`: the landing page, the store's overview of the last hour and day. */
export async function overviewRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get('/', { schema: HIDE }, async (req, reply) => {
    const viewer = viewerOf(req);
    const now = Date.now();
    const tenant = (req.query as Record<string, unknown>).tenant;
    const known = viewer.operator ? await tenants(ctx) : [];
    const pick = typeof tenant === 'string' && known.includes(tenant) ? tenant : undefined;
    const scope = viewer.operator ? (pick ?? null) : viewer.tenantId;
    const stats = await ctx.store.taskStats(scope, { hourFrom: now - HOUR, dayFrom: now - DAY });
    const label = scope === null ? 'Every tenant (an operator key)' : viewer.operator ? `Tenant ${scope}` : `Key ${viewer.keyName}: its tenant's tasks`;
    return sendHtml(reply, page({ title: 'Overview', viewer, section: 'overview', body: overviewBody(stats, label, viewer.operator ? { tenants: known, chosen: pick } : undefined) }));
  });
}
