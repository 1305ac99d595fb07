import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.js';
import type { Task } from '../core/task.js';
import type { Html } from './html.js';
import type { Viewer } from './session.js';

/** Every dashboard route's schema: hidden from the API's OpenAPI document (the dashboard is pages, not API). */
export const HIDE = { hide: true } as object;

const viewers = new WeakMap<FastifyRequest, Viewer>();

/** The viewer the auth hook found for this request (every route but sign-in and assets has one). */
export function viewerOf(req: FastifyRequest): Viewer {
  const v = viewers.get(req);
  if (!v) throw new Error('no dashboard session on this request');
  return v;
}

export function setViewer(req: FastifyRequest, v: Viewer): void {
  viewers.set(req, v);
}

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

/** One SSE event whose data is HTML (one `data:` line per line of it). */
export function sseHtml(reply: FastifyReply, event: string, body: Html): void {
  reply.raw.write(`event: ${event}\n${body.text.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
