import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { HIDE } from './scope.js';

const require = createRequire(import.meta.url);

/**
 * The dashboard's static files, read once at start: htmx and its SSE extension from their
 * packages (pinned in package.json; nothing from a CDN), and the stylesheet beside this file
 * (`scripts/copy-assets.mjs` copies it into dist). Each name holds its bytes for good: a new
 * version of the package comes with a restart, so a day of caching is safe.
 */
const FILES: Record<string, { path: () => string; type: string }> = {
  'htmx.min.js': { path: () => require.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript; charset=utf-8' },
  'sse.min.js': { path: () => require.resolve('htmx-ext-sse/dist/sse.min.js'), type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { path: () => fileURLToPath(new URL('./assets/dashboard.css', import.meta.url)), type: 'text/css; charset=utf-8' },
};

export function registerAssets(app: FastifyInstance): void {
  const loaded = Object.fromEntries(Object.entries(FILES).map(([name, f]) => [name, { bytes: readFileSync(f.path()), type: f.type }]));
  app.get<{ Params: { name: string } }>('/assets/:name', { schema: HIDE }, async (req, reply) => {
    const f = loaded[req.params.name];
    if (!f) return reply.callNotFound();
    return reply.type(f.type).header('cache-control', 'public, max-age=86400').send(f.bytes);
  });
}
