import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.js';
import type { Task } from '../core/task.js';
import type { Html } from './html.js';
import type { Viewer } from './session.js';

/** Every dashboard route's schema: hidden from the API's OpenAPI document (the dashboard is pages, not API). */
export const HIDE = { hide: true } as object;

const viewers = new WeakMap<FastifyRequest, Viewer>();
const rechecks = new WeakMap<FastifyRequest, () => Promise<boolean>>();

/** The viewer the auth hook found for this request (every route but sign-in and assets has one). */
export function viewerOf(req: FastifyRequest): Viewer {
  const v = viewers.get(req);
  if (!v) throw new Error('no dashboard session on this request');
  return v;
}

export function setViewer(req: FastifyRequest, v: Viewer, recheck: () => Promise<boolean>): void {
  viewers.set(req, v);
  rechecks.set(req, recheck);
}

/** Whether the request's session still holds (not signed out, expired, nor its key revoked): asked again by a long stream. */
export function stillSignedIn(req: FastifyRequest): Promise<boolean> {
  return rechecks.get(req)?.() ?? Promise.resolve(false);
}

/** How many looks of a stream go by between two checks of its session (about ten seconds). */
export const RECHECK_LOOKS = 10;

/**
 * The event that ends a live part whose session ended: its element (`liveSection`) closes the
 * stream on it (`sse-close`) and loads the sign-in page in the page's place.
 */
export const SIGNED_OUT = 'event: signed-out\ndata: <div hx-get="/dashboard/signin" hx-trigger="load" hx-target="body" hx-push-url="true"></div>\n\n';

/**
 * A task as the viewer may see it: its own tenant's, or, for an operator, any tenant's. Another
 * tenant's task is undefined, as an unknown id is: the page says "not found" alike.
 */
export async function findTask(ctx: AppContext, viewer: Viewer, id: string): Promise<Task | undefined> {
  if (!viewer.operator) return ctx.tasks.get(viewer.tenantId, id);
  const tenantId = await ctx.store.tenantOfTask(id);
  return tenantId === undefined ? undefined : ctx.tasks.get(tenantId, id);
}

/** The tenants an operator may pick: those of every key, revoked ones included (their tasks stay). */
export async function tenants(ctx: AppContext): Promise<string[]> {
  return [...new Set((await ctx.store.listKeys()).map((k) => k.tenantId))].sort();
}

/** Sends a page. */
export function sendHtml(reply: FastifyReply, body: Html, status = 200): FastifyReply {
  return reply.status(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body.text);
}

/**
 * One SSE event whose data is HTML (one `data:` line per line of it: a line ends at CR, LF or
 * CRLF, as EventSource reads them), with its `id` when given (what a reconnect sends back as
 * `Last-Event-ID`).
 */
export function sseHtml(reply: FastifyReply, event: string, body: Html, id?: number): void {
  const data = body.text.split(/\r\n|\r|\n/).map((l) => `data: ${l}`).join('\n');
  reply.raw.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\n${data}\n\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
