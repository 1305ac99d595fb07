import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.js';
import { isTerminal } from '../core/states.js';
import type { Task } from '../core/task.js';
import { toDelivery, toEvents, toNative } from '../dialects/native/mapper.js';
import { EventStream } from '../http/sse.js';
import { taskUrls } from '../results/files.js';
import type { Html } from './html.js';
import { notFound, page } from './layout.js';
import { STREAM_POLL_MS } from './list-routes.js';
import { findTask, HIDE, RECHECK_LOOKS, SIGNED_OUT, sendHtml, sleep, sseHtml, stillSignedIn, viewerOf } from './scope.js';
import { redirect, type Viewer } from './session.js';
import { credits, deliveries, inputUrls, outputs, summary, taskSection, type TaskView, timeline } from './task-page.js';

type IdParams = { Params: { id: string } };

/** Everything the task page shows, read from the store at once. */
async function read(ctx: AppContext, task: Task): Promise<TaskView> {
  const [{ events, attempts }, delivered, ledger, artifacts] = await Promise.all([
    ctx.tasks.events(task),
    ctx.tasks.deliveries(task),
    ctx.store.listLedger(task.tenantId, { limit: 100, taskId: task.id }),
    ctx.store.listArtifacts(task.id),
  ]);
  return {
    task,
    urls: taskUrls(ctx.files, task),
    inputs: inputUrls(task, artifacts, (name) => ctx.files.url(task, name)),
    events: toEvents(task, events, attempts),
    deliveries: delivered,
    ledger: [...ledger].reverse(),
    now: Date.now(),
  };
}

/**
 * `/dashboard/tasks/:id`: the task page (input, video players, timeline, credits, deliveries),
 * its live part (`/live`) and its SSE stream (`/stream`), the actions Cancel and Resend (POST,
 * back to the page), and Download JSON. Another tenant's task is "not found", as an unknown id.
 */
export async function taskRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const found = async (req: FastifyRequest<IdParams>, reply: FastifyReply): Promise<{ viewer: Viewer; task: Task } | undefined> => {
    const viewer = viewerOf(req);
    const task = await findTask(ctx, viewer, req.params.id);
    if (!task) {
      sendHtml(reply, notFound(viewer, `There is no task ${req.params.id}.`), 404);
      return undefined;
    }
    return { viewer, task };
  };

  app.get<IdParams>('/tasks/:id', { schema: HIDE }, async (req, reply) => {
    const f = await found(req, reply);
    if (!f) return reply;
    const live = (req.query as Record<string, unknown>).live !== '0';
    return sendHtml(reply, page({ title: f.task.id, viewer: f.viewer, section: 'tasks', body: taskSection(await read(ctx, f.task), f.viewer, live) }));
  });

  app.get<IdParams>('/tasks/:id/live', { schema: HIDE }, async (req, reply) => {
    const f = await found(req, reply);
    if (!f) return reply;
    return sendHtml(reply, taskSection(await read(ctx, f.task), f.viewer, (req.query as Record<string, unknown>).live === '1'));
  });

  // Each second the task is read again; each part of the page whose HTML changed is sent as its
  // event (`summary`, `outputs`, `timeline`, `credits`, `deliveries`), swapped in place.
  app.get<IdParams>('/tasks/:id/stream', { schema: HIDE }, async (req, reply) => {
    const stream = new EventStream(req, reply);
    const f = await found(req, reply);
    if (!f) return reply;
    if (!stream.open()) return;
    const last = new Map<string, string>();
    let task: Task | undefined = f.task;
    let looks = 0;
    try {
      let first = true;
      while (!stream.closed && !ctx.tasks.draining && task) {
        if (++looks % RECHECK_LOOKS === 0 && !(await stillSignedIn(req))) {
          reply.raw.write(SIGNED_OUT);
          break;
        }
        const v = await read(ctx, task);
        const parts: [string, Html][] = [['summary', summary(v, f.viewer)], ['outputs', outputs(v)], ['timeline', timeline(v)], ['credits', credits(v)], ['deliveries', deliveries(v, f.viewer)]];
        for (const [name, body] of parts) {
          // The page was rendered just now: the first look only records what it shows.
          if (last.get(name) !== body.text && !first) sseHtml(reply, name, body);
          last.set(name, body.text);
        }
        first = false;
        stream.keepAlive();
        await sleep(STREAM_POLL_MS);
        task = await ctx.tasks.get(task.tenantId, task.id);
      }
    } catch (e) {
      ctx.log.warn({ err: (e as Error).message }, 'dashboard task stream ended by an error');
    } finally {
      stream.end();
    }
  });

  app.post<IdParams>('/tasks/:id/cancel', { schema: HIDE }, async (req, reply) => {
    const f = await found(req, reply);
    if (!f) return reply;
    if (!isTerminal(f.task.state)) await ctx.tasks.cancel(f.task.tenantId, f.task.id);
    return redirect(req, reply, `/dashboard/tasks/${encodeURIComponent(f.task.id)}`);
  });

  app.post<{ Params: { id: string; delivery: string } }>('/tasks/:id/deliveries/:delivery/resend', { schema: HIDE }, async (req, reply) => {
    const f = await found(req, reply);
    if (!f) return reply;
    const n = Number(req.params.delivery);
    if (!Number.isSafeInteger(n) || n <= 0 || !(await ctx.tasks.resend(f.task, n))) {
      return sendHtml(reply, notFound(f.viewer, `Task ${f.task.id} has no delivery ${req.params.delivery}.`), 404);
    }
    return redirect(req, reply, `/dashboard/tasks/${encodeURIComponent(f.task.id)}`);
  });

  // The task, its audit trail, its deliveries and its ledger entries as one JSON file.
  app.get<IdParams>('/tasks/:id/json', { schema: HIDE }, async (req, reply) => {
    const f = await found(req, reply);
    if (!f) return reply;
    const v = await read(ctx, f.task);
    const body = {
      task: toNative(f.task, v.urls),
      events: v.events,
      deliveries: v.deliveries.map(toDelivery),
      ledger: v.ledger.map((e) => ({ id: e.id, kind: e.kind, item: e.item, amount: e.amount, charged: e.charged, at: new Date(e.at).toISOString(), note: e.note })),
    };
    const name = `${f.task.id.replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
    return reply
      .type('application/json; charset=utf-8')
      .header('content-disposition', `attachment; filename="${name}"`)
      .header('cache-control', 'no-store')
      .send(JSON.stringify(body, null, 2));
  });
}
