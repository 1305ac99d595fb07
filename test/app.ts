import { join } from 'node:path';
import { after } from 'node:test';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../src/app/context.js';
import { Previews } from '../src/app/previews.js';
import { TaskService } from '../src/app/tasks.js';
import { WebhookService } from '../src/app/webhooks.js';
import { locateBinaries } from '../src/media/ffmpeg.js';
import { KeyCache } from '../src/auth/cache.js';
import { hashKey } from '../src/auth/keys.js';
import { loadConfig } from '../src/config.js';
import { DIALECTS } from '../src/dialects/index.js';
import { buildServer } from '../src/http/server.js';
import { UrlGuard } from '../src/net/guard.js';
import { ResultFiles } from '../src/results/files.js';
import { withTaskCache } from '../src/store/cache.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { tmpDir } from './tmp.js';

export const KEY_A = 'sk-test-tenant-a';
export const KEY_B = 'sk-test-tenant-b';

/** An in-process app (no engine, no listening socket) with two tenants' keys, for app.inject(). */
export async function testApp(env: Record<string, string> = {}): Promise<{ app: FastifyInstance; ctx: AppContext }> {
  const dir = tmpDir();
  const config = loadConfig({ REELAY_DATA_DIR: dir, REELAY_BODY_LIMIT_BYTES: '65536', ...env });
  // Wrapped in the task read cache as the server wires it, so the polling fast path is the one tested.
  const store = withTaskCache(openSqliteStore(join(dir, 'reelay.sqlite')));
  for (const [i, key] of [KEY_A, KEY_B].entries()) {
    await store.insertKey({ id: `k${i}`, tenantId: `tenant${i}`, hash: hashKey(key), prefix: key.slice(0, 10), name: '', source: 'cli', createdAt: 0, revokedAt: null });
  }
  const guard = new UrlGuard(config.urlAllowlist);
  const files = new ResultFiles(dir, config.publicUrl);
  const ctx: AppContext = {
    config,
    store,
    keys: new KeyCache(store),
    files,
    tasks: new TaskService(store, guard, config, files),
    previews: new Previews(files, locateBinaries()),
    webhooks: new WebhookService(store, guard),
    log: pino({ level: 'silent' }),
  };
  const app = await buildServer(ctx, DIALECTS);
  after(async () => {
    await app.close();
    await store.close();
  });
  return { app, ctx };
}

export const auth = (key = KEY_A) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
