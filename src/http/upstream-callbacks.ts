import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { callbackToken, callbackUrl } from '../providers/callbacks.js';
import type { RoutingConfig } from '../routing/config.js';

/**
 * `POST /upstream-callbacks/{label}/{token}`: an upstream (kie) says a job changed. The body is not
 * trusted: it only makes the task due now, and the next poll reads the outcome from the upstream.
 * A wrong label or token is a plain 404.
 */
export function registerUpstreamCallbacks(app: FastifyInstance, routing: RoutingConfig, wakeUpstream: (provider: string, upstreamId: string) => Promise<void>): void {
  app.post<{ Params: { label: string; token: string } }>('/upstream-callbacks/:label/:token', { config: { doc: { summary: 'An upstream\'s callback', description: 'Where upstreams with callbacks (kie) say a job changed; it makes the task due now. A wrong label or token is a 404.', responses: { 200: { description: '`{code: 200, msg: "success"}`' }, 404: { description: 'Unknown' } } } } }, async (req, reply) => {
    const p = routing.providers.get(req.params.label);
    const want = p && callbackUrl('', p) ? Buffer.from(callbackToken(p)) : undefined;
    const got = Buffer.from(req.params.token);
    if (!p || !want || want.length !== got.length || !timingSafeEqual(want, got)) return reply.status(404).send({ code: 404, msg: 'Not Found' });
    const data = (req.body as { data?: { taskId?: unknown; task_id?: unknown } } | undefined)?.data;
    const upstreamId = typeof data?.taskId === 'string' ? data.taskId : typeof data?.task_id === 'string' ? data.task_id : undefined;
    if (upstreamId) await wakeUpstream(p.label, upstreamId);
    return { code: 200, msg: 'success' };
  });
}
