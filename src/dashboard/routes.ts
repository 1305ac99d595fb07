import { parse as parseQuery } from 'node:querystring';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.js';
import { ApiError } from '../app/errors.js';
import { hashKey } from '../auth/keys.js';
import { toApiError } from '../http/errors.js';
import { registerAssets } from './assets.js';
import { html } from './html.js';
import { notFound, page, problem } from './layout.js';
import { listRoutes } from './list-routes.js';
import { overviewRoutes } from './overview.js';
import { newRoutes } from './new.js';
import { HIDE, SIGNED_OUT, sendHtml, setViewer, viewerOf } from './scope.js';
import { cookies, newToken, redirect, same, sameSite, Sessions, SIGNIN_COOKIE } from './session.js';
import { taskRoutes } from './task-routes.js';

/**
 * The security headers of every dashboard answer: a Content-Security-Policy that lets in only
 * this origin's scripts, styles and media (no inline script: htmx is configured by a meta tag;
 * presigned S3 URLs for media when result files redirect there), no framing, no sniffing, and
 * referrers kept to this origin.
 */
function securityHeaders(ctx: AppContext): Record<string, string> {
  const media = ctx.config.filesMode === 'redirect' ? "'self' https:" : "'self'";
  return {
    'content-security-policy': `default-src 'self'; script-src 'self'; style-src 'self'; img-src ${media} data:; media-src ${media}; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    'x-frame-options': 'DENY',
  };
}

/** The sign-in page: paste a key. `next` is where to go after (a dashboard path only). */
function signinPage(token: string, next: string, error?: string) {
  return page({
    title: 'Sign in',
    section: 'signin',
    body: html`<div class="signin card">
<h1>Sign in</h1>
<p class="muted">Paste an API key of this Reelay (<code>reelay keys create</code> makes one). The dashboard shows that key's tasks.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/dashboard/signin">
<input type="hidden" name="_csrf" value="${token}">
<input type="hidden" name="next" value="${next}">
<label>API key <input type="password" name="key" autocomplete="current-password" required autofocus spellcheck="false"></label>
<button type="submit">Sign in</button>
</form>
</div>`,
  });
}

/** A path inside the dashboard to go back to after sign-in; anything else goes to the overview. */
function nextOf(v: unknown): string {
  return typeof v === 'string' && /^\/dashboard(\/[A-Za-z0-9._~:@!$&'()*+,;=%/?-]*)?$/.test(v) && !v.startsWith('//') ? v : '/dashboard';
}

/**
 * The dashboard under `/dashboard`: a session cookie made from an API key, then server-rendered
 * pages that htmx enhances (`layout.ts`). Every route but sign-in and the assets needs a
 * session; every POST must come from this site (`Origin`, `Sec-Fetch-Site`) and carry the
 * session's CSRF token (the `_csrf` field or `X-CSRF-Token`).
 */
export async function dashboardRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const secure = new URL(ctx.config.publicUrl).protocol === 'https:';
  const sessions = new Sessions(ctx.store, new Set(ctx.config.operatorKeys), secure);
  const headers = securityHeaders(ctx);

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    done(null, parseQuery(body as string));
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.headers(headers);
    const path = req.url.split('?')[0]!;
    if (req.method === 'POST' && !sameSite(req, ctx.config.publicUrl)) {
      return sendHtml(reply, problem(undefined, 'Refused', 'This form was sent from another site.'), 403);
    }
    if (path.startsWith('/dashboard/assets/') || path === '/dashboard/signin') return;
    const viewer = await sessions.viewer(req);
    // A stream whose session ended is sent the one event that closes it and loads the sign-in
    // page (an EventSource retries any other answer, 204 included, for ever).
    if (!viewer && path.endsWith('/stream')) return reply.status(200).type('text/event-stream').header('cache-control', 'no-store').send(SIGNED_OUT);
    if (!viewer) return redirect(req, reply, `/dashboard/signin?next=${encodeURIComponent(req.method === 'GET' ? req.url : '/dashboard')}`);
    // A stream asks again now and then, without counting as use (an open tab does not keep a session alive).
    setViewer(req, viewer, async () => (await sessions.viewer(req, Date.now(), false)) !== undefined);
  });
  // The CSRF check of every POST but sign-in (its own token) and New video (a multipart form,
  // which checks its field once its parts are read).
  app.addHook('preHandler', async (req, reply) => {
    const path = req.url.split('?')[0];
    if (req.method !== 'POST' || path === '/dashboard/signin' || path === '/dashboard/new') return;
    const sent = (req.headers['x-csrf-token'] as string | undefined) ?? fieldOf(req.body, '_csrf');
    if (!same(sent, viewerOf(req).csrf)) return sendHtml(reply, problem(viewerOf(req), 'Refused', 'This form has expired or did not come from this dashboard; reload the page and try again.'), 403);
  });
  app.setNotFoundHandler((req, reply) => sendHtml(reply, notFound(undefined, `${req.url.split('?')[0]} does not exist.`), 404));
  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err);
    if (e.kind === 'internal') ctx.log.error({ err: e.cause ?? err, url: req.url.split('?')[0] }, 'dashboard request failed');
    const status = e.kind === 'internal' ? 500 : e.kind === 'not_found' ? 404 : 400;
    return sendHtml(reply, problem(undefined, status === 500 ? 'Something went wrong' : 'Not possible', status === 500 ? 'The server could not answer; the log says why.' : e.message), status);
  });

  registerAssets(app);

  app.get('/signin', { schema: HIDE }, async (req, reply) => {
    if (await sessions.viewer(req)) return reply.redirect('/dashboard', 303);
    const token = newToken();
    reply.header('set-cookie', sessions.signinCookie(token));
    return sendHtml(reply, signinPage(token, nextOf((req.query as Record<string, unknown>).next)));
  });

  app.post('/signin', { schema: HIDE }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = nextOf(fieldOf(body, 'next'));
    // Sign-in CSRF: the form carries back the token its page set as a cookie.
    const expected = cookies(req)[SIGNIN_COOKIE];
    if (!expected || !same(fieldOf(body, '_csrf'), expected)) {
      const token = newToken();
      reply.header('set-cookie', sessions.signinCookie(token));
      return sendHtml(reply, signinPage(token, next, 'The sign-in form expired; paste the key again.'), 403);
    }
    const key = fieldOf(body, 'key')?.trim() ?? '';
    const found = key ? await ctx.store.findKeyByHash(hashKey(key)) : undefined;
    if (!found) {
      return sendHtml(reply, signinPage(expected, next, 'That key is not a live key of this Reelay.'), 401);
    }
    const session = await sessions.open(found.id, found.tenantId);
    reply.header('set-cookie', [session, sessions.cleared(SIGNIN_COOKIE)]);
    return reply.redirect(next, 303);
  });

  app.post('/signout', { schema: HIDE }, async (req, reply) => {
    reply.header('set-cookie', await sessions.close(viewerOf(req)));
    return redirect(req, reply, '/dashboard/signin');
  });

  await listRoutes(app, ctx);
  await taskRoutes(app, ctx);
  await newRoutes(app, ctx);
  await overviewRoutes(app, ctx);
}

/** A form field as one string (the first when sent twice). */
export function fieldOf(body: unknown, name: string): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const v = (body as Record<string, unknown>)[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s : undefined;
}

/** The Door's error answer for a request that failed before routing (a malformed URL). */
export function dashboardReplyError(reply: FastifyReply, _req: FastifyRequest, err: ApiError): FastifyReply {
  return sendHtml(reply, problem(undefined, 'Bad request', err.message), 400);
}
