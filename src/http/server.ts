import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ApiError } from '../app/errors.js';
import type { AppContext } from '../app/context.js';
import { limitJsonDepth } from './json.js';
import { type DoorDoc, registerOpenApi } from './openapi.js';

/** What the server mounts for a dialect (`dialects/port.ts` says the rest of what a dialect is). */
export interface Door {
  /** The path its routes live under (`/api/v1/veo`). */
  prefix: string;
  /** Its part of the API document: its tag and key scheme. A door without one (the dashboard's pages) is left out of it. */
  doc?: DoorDoc;
  /** Registers its routes, its error envelope and its not-found answer, in a scope of its own. */
  routes(scope: FastifyInstance, ctx: AppContext): Promise<void>;
  /**
   * Answers an error in its envelope: what its routes' error handler does, also used for a request
   * under its prefix that fails before any route is found (a malformed URL).
   */
  replyError(reply: FastifyReply, req: FastifyRequest, err: ApiError, ctx: AppContext): FastifyReply;
}

/**
 * The HTTP side: each dialect is an encapsulated plugin under its own prefix, with its own error
 * envelope and key check; result files are public (their path holds an unguessable token). The
 * dialects come in as a list (`dialects/index.ts`); this file names none of them.
 */
export async function buildServer(ctx: AppContext, dialects: readonly Door[]): Promise<FastifyInstance> {
  const options = {
    // No Fastify logger: a child logger per request costs ~10% of a query, and per-request lines
    // would log every poll. Errors are logged with ctx.log where they are handled.
    logger: false,
    bodyLimit: ctx.config.bodyLimitBytes,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // A URL that cannot be decoded (`%E0%A4%A`) fails before routing: it is answered in the
    // envelope of the door whose prefix it is under, like any other bad request there.
    frameworkErrors: (err: Error, req: FastifyRequest, reply: FastifyReply) => {
      const path = req.url.split('?')[0]!;
      const door = [...dialects].sort((a, b) => b.prefix.length - a.prefix.length).find((d) => path === d.prefix || path.startsWith(`${d.prefix}/`));
      const bad = new ApiError('validation', `The URL is malformed: ${err.message}`);
      if (door) return door.replyError(reply, req, bad, ctx);
      return reply.status(400).send({ error: { message: bad.message, code: 'bad_request' } });
    },
  };
  // HTTPS when the configuration names the PEM files (checked by loadConfig). The instance is the
  // same to every route; only the listening server differs.
  const tls = ctx.config.tls;
  const app = tls
    ? (Fastify({ ...options, https: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } }) as unknown as FastifyInstance)
    : Fastify(options);
  limitJsonDepth(app);
  // Before any route: the document is made from the routes registered after it.
  await registerOpenApi(app, ctx.config.publicUrl, dialects);

  // Result files: `/files/<token>/<name>`, from where `ResultFiles` keeps them (the local folder or
  // S3), with Range, ETag and 304; or, with `REELAY_FILES=redirect` on S3, a 302 to a presigned URL.
  // The bytes behind a URL never change: any cache may keep them a day.
  app.get<{ Params: { token: string; name: string } }>('/files/:token/:name', { config: { doc: { summary: 'A result file', description: 'The URLs tasks give for their videos and stills: public (the token is unguessable), with Range, ETag and 304. With `REELAY_FILES=redirect` on S3, a 302 to a presigned URL.', responses: { 200: { description: 'The file', type: 'application/octet-stream', schema: { type: 'string', format: 'binary' } }, 206: { description: 'A range of it' }, 404: { description: 'No such file (or it expired)' } } } } }, async (req, reply) => {
    const served = await ctx.files.serve(req, reply, req.params.token, req.params.name, { cacheControl: 'public, max-age=86400, immutable' });
    if (!served.found) return reply.callNotFound();
    return reply;
  });

  // Liveness: the process answers. Readiness: it can do its job, the database and the result
  // storage answer (a load balancer sends requests only to ready processes).
  app.get('/healthz', { config: { doc: { summary: 'Liveness', responses: { 200: { description: '`{ok, role, draining}`' } } } } }, async () => ({ ok: true, role: ctx.config.role, draining: ctx.tasks.draining }));
  app.get('/readyz', { config: { doc: { summary: 'Readiness', description: 'The database and the result storage answer, and the process is not draining.', responses: { 200: { description: 'Ready' }, 503: { description: 'Not ready: `database`, `storage` say why' } } } } }, async (_req, reply) => {
    const [database, storage] = await Promise.all([probe(() => ctx.store.ping?.()), probe(() => ctx.files.check())]);
    const ok = database.ok && storage.ok && !ctx.tasks.draining;
    return reply.status(ok ? 200 : 503).send({ ok, role: ctx.config.role, draining: ctx.tasks.draining, database, storage });
  });

  // `Retry-After` of an error that says when a retry may succeed, whichever door's envelope it is
  // sent in (an onError hook runs only for a request that failed).
  app.addHook('onError', async (_req, reply, err) => {
    if (err instanceof ApiError && err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  });

  for (const dialect of dialects) await app.register(async (scope) => dialect.routes(scope, ctx), { prefix: dialect.prefix });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { message: `${req.method} ${req.url.split('?')[0]} does not exist`, code: 'not_found' } });
  });
  app.setErrorHandler((err, req, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) ctx.log.error({ err, url: req.url.split('?')[0] }, 'request failed');
    reply.status(status).send({ error: { message: status >= 500 ? 'Internal error' : (err as Error).message, code: 'error' } });
  });
  return app;
}

/** Runs a reachability check within 2 s: ok, or the error it gave. */
async function probe(check: () => Promise<unknown> | unknown): Promise<{ ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(check),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000))),
    ]);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
