import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app/context.js';
import type { Task } from '../core/task.js';
import { DIALECTS } from '../dialects/index.js';
import { EventStream } from '../http/sse.js';
import { page } from './layout.js';
import { filterOf, type ListQuery, type ListView, listBody, listSection, matches, PAGE_SIZE, readListQuery, row } from './list.js';
import { HIDE, RECHECK_LOOKS, SIGNED_OUT, sendHtml, sleep, sseHtml, stillSignedIn, tenants, viewerOf } from './scope.js';
import type { Viewer } from './session.js';

/** How often a list's stream reads the changed tasks (so a row changes at most once a second). */
export const STREAM_POLL_MS = 1000;
const STREAM_BATCH = 200;

/** The models a form offers: the routing file's public names (no patterns), and the usual ones. */
export function knownModels(ctx: AppContext): string[] {
  const named = ctx.config.routing.models.flatMap((m) => m.match).filter((m) => !/[*?]/.test(m));
  return [...new Set([...named, 'veo3.1-fast', 'veo3.1', 'veo3_fast', 'veo3'])];
}

/** The tenant a list reads: the viewer's own; an operator's pick, or every tenant's (null). */
function tenantOfList(viewer: Viewer, q: ListQuery): string | null {
  if (!viewer.operator) return viewer.tenantId;
  return q.tenant ?? null;
}

/** A page of the list, as the store runs its filter; undefined when the cursor names no task. */
async function listPage(ctx: AppContext, viewer: Viewer, q: ListQuery): Promise<{ tasks: Task[]; hasMore: boolean } | undefined> {
  const filter = filterOf(q);
  const size = q.limit ? Number(q.limit) : PAGE_SIZE;
  const rows = await ctx.store.listTasks(tenantOfList(viewer, q), {
    limit: size + 1,
    order: 'desc',
    ...(q.after ? { after: q.after } : {}),
    ...(Object.keys(filter).length ? { filter } : {}),
  });
  return rows && { tasks: rows.slice(0, size), hasMore: rows.length > size };
}

async function view(ctx: AppContext, viewer: Viewer, q: ListQuery, live: boolean): Promise<ListView> {
  // Taken before the list is read: the stream goes on from it (a change while reading is sent).
  const now = Date.now();
  const found = (await listPage(ctx, viewer, q)) ?? { tasks: [], hasMore: false };
  const add = (list: string[], v: string | undefined) => (v && !list.includes(v) ? [...list, v] : list);
  return {
    q,
    ...found,
    models: add(knownModels(ctx), q.model),
    providers: add([...ctx.config.routing.providers.keys()], q.provider),
    dialects: add(DIALECTS.map((d) => d.name), q.dialect),
    tenants: viewer.operator ? add(await tenants(ctx), q.tenant) : [],
    live,
    now,
  };
}

/**
 * `/dashboard/tasks`: the list, filtered and searched by the store (every filter in the query
 * string), newest first, a cursor (`after`) for older pages; `/tasks/live` is its live part
 * alone, live or paused (the Pause switch); `/tasks/stream` the SSE stream that keeps it live.
 */
export async function listRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get('/tasks', { schema: HIDE }, async (req, reply) => {
    const viewer = viewerOf(req);
    const raw = req.query as Record<string, unknown>;
    const q = readListQuery(raw);
    const v = await view(ctx, viewer, q, raw.live !== '0');
    return sendHtml(reply, page({ title: 'Tasks', viewer, section: 'tasks', body: listBody(v, viewer, v.now) }));
  });

  app.get('/tasks/live', { schema: HIDE }, async (req, reply) => {
    const viewer = viewerOf(req);
    const raw = req.query as Record<string, unknown>;
    const v = await view(ctx, viewer, readListQuery(raw), raw.live === '1');
    return sendHtml(reply, listSection(v, viewer, v.now));
  });

  // The list's stream: each second, the tasks changed since the last look (the store's
  // `changedTasks`, by `updated_at`); a task on the page is sent as its row (`task-<id>`, swapped
  // in place), a new one that matches the filter as `new` (first page only, put on top).
  app.get('/tasks/stream', { schema: HIDE }, async (req, reply) => {
    const stream = new EventStream(req, reply);
    const viewer = viewerOf(req);
    const raw = req.query as Record<string, unknown>;
    const q = readListQuery(raw);
    const filter = filterOf(q);
    const tenant = tenantOfList(viewer, q);
    if (!stream.open()) return;
    // `since` is when the page read its list: a task made after it is new to the page (or was
    // sent as new before a reconnect, which sends back the last event's id, its time); one made
    // before it is a row of the page (when it is on this page at all) and is sent to be redrawn.
    const asked = Number(raw.since);
    const resumed = Number(req.headers['last-event-id']);
    const pageAt = Number.isFinite(asked) && asked > 0 ? asked : Date.now();
    const known = Number.isFinite(resumed) && resumed > pageAt ? resumed : pageAt;
    // Each tenant's changes are read from where its own last read ended (an operator's list reads
    // every tenant, each a batch at a time: one tenant's full batch must not skip another's).
    const sinceOf = new Map<string, number>();
    const shown = new Set<string>();
    const sent = new Map<string, number>();
    // Every tenant's (an operator's list): the tenants are read again every 10 looks, not each one.
    let scopes: string[] = tenant === null ? [] : [tenant];
    let looks = 0;
    try {
      while (!stream.closed && !ctx.tasks.draining) {
        if (looks > 0 && looks % RECHECK_LOOKS === 0 && !(await stillSignedIn(req))) {
          reply.raw.write(SIGNED_OUT);
          break;
        }
        if (tenant === null && looks % 10 === 0) scopes = await tenants(ctx);
        looks++;
        const reads = await Promise.all(scopes.map(async (t) => ({ t, tasks: await ctx.tasks.changed(t, sinceOf.get(t) ?? known, STREAM_BATCH) })));
        for (const r of reads) {
          // Oldest change first: a tenant's next read starts at the newest it has seen.
          const newest = r.tasks.at(-1)?.updatedAt;
          if (newest !== undefined && newest > (sinceOf.get(r.t) ?? known)) sinceOf.set(r.t, newest);
        }
        const changed = reads.flatMap((r) => r.tasks).sort((a, b) => a.updatedAt - b.updatedAt);
        const now = Date.now();
        for (const t of changed) {
          if (sent.get(t.id) === t.updatedAt) continue;
          sent.set(t.id, t.updatedAt);
          if (t.createdAt <= known || shown.has(t.id)) sseHtml(reply, `task-${t.id}`, row(t, now, viewer), t.updatedAt);
          else if (!q.after && matches(t, filter)) {
            shown.add(t.id);
            sseHtml(reply, 'new', row(t, now, viewer), t.updatedAt);
          }
        }
        // What was sent at or after the oldest place a read starts from may come again: kept to skip it.
        const floor = scopes.length ? Math.min(...scopes.map((t) => sinceOf.get(t) ?? known)) : known;
        for (const [id, at] of sent) if (at < floor) sent.delete(id);
        stream.keepAlive();
        await sleep(STREAM_POLL_MS);
      }
    } catch (e) {
      ctx.log.warn({ err: (e as Error).message }, 'dashboard list stream ended by an error');
    } finally {
      stream.end();
    }
  });
}
