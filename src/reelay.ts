import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from './app/context.js';
import { Previews } from './app/previews.js';
import { TaskService } from './app/tasks.js';
import { WebhookService } from './app/webhooks.js';
import { KeyCache } from './auth/cache.js';
import { ensureKeys } from './auth/keys.js';
import type { Config } from './config.js';
import type { Task } from './core/task.js';
import { dashboard } from './dashboard/index.js';
import { DIALECTS, dialectNamed } from './dialects/index.js';
import { eventType, toEvent } from './dialects/native/mapper.js';
import { Deliverer } from './engine/deliveries.js';
import { EndpointCache } from './engine/endpoints.js';
import { Engine } from './engine/engine.js';
import { sweep } from './engine/sweeper.js';
import { buildServer } from './http/server.js';
import { registerUpstreamCallbacks } from './http/upstream-callbacks.js';
import { Metrics } from './metrics.js';
import { locateBinaries } from './media/ffmpeg.js';
import { GuardedFetcher } from './net/fetch.js';
import { UrlGuard } from './net/guard.js';
import { createProviders } from './providers/index.js';
import { LocalProvider } from './providers/local/index.js';
import { Router } from './routing/router.js';
import { ResultFiles, taskUrls } from './results/files.js';
import { openObjectStore, s3OptionsFromEnv } from './storage/open.js';
import type { NewDelivery } from './store/port.js';
import { backendOf, openStore } from './store/open.js';

export interface Reelay {
  app: FastifyInstance;
  ctx: AppContext;
  engine: Engine;
  /** The key created on first start (when no key existed), to print once. */
  firstKey?: string;
  /** Stops taking tasks (455), lets running steps commit, closes everything. */
  close(): Promise<void>;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.apiKey', 'key'], censor: '[redacted]' },
  });
}

/**
 * Builds and starts a gateway process in its role (`Config.role`): on the embedded default (SQLite,
 * local files, local renderer), or as one of many processes sharing a PostgreSQL database.
 */
export async function startReelay(config: Config, log: Logger = createLogger(config.logLevel)): Promise<Reelay> {
  // Migrations run under the store's lock, so many processes may start at once. The task read
  // cache is put in front only where this process is the store's single writer (SQLite).
  const store = await openStore(config, { migrate: true, cache: true });
  log.info({ role: config.role, store: backendOf(config), cached: store.capabilities.singleWriter }, 'store open');
  const firstKey = await ensureKeys(store, config.apiKeys);
  const binaries = locateBinaries({ ffmpeg: config.ffmpegPath, ffprobe: config.ffprobePath });
  log.info({ ffmpeg: binaries.ffmpeg, ffprobe: binaries.ffprobe, source: binaries.source }, 'media binaries');
  const guard = new UrlGuard(config.urlAllowlist);
  const fetcher = new GuardedFetcher(guard);
  // Results: the folder or the S3 bucket of REELAY_STORAGE (credentials from the AWS variables).
  const objects = await openObjectStore(config.storage, s3OptionsFromEnv({ ...process.env, REELAY_S3_ENDPOINT: config.s3Endpoint }));
  log.info({ storage: objects.description, files: config.filesMode }, 'result storage');
  const files = new ResultFiles(config.dataDir, config.publicUrl, { objects, filesMode: config.filesMode });
  const rendersDir = join(config.dataDir, 'renders');
  const local = new LocalProvider({
    dir: rendersDir,
    binaries,
    concurrency: config.renderConcurrency,
    renderDelayMs: config.renderDelayMs,
    blockedWords: config.blockedWords,
    log,
  });
  // A finished task's callback, in the body of the dialect it was created through.
  const endpoints = new EndpointCache(store, log);
  const notify = (task: Task, event?: 'uhd'): NewDelivery[] => {
    const urls = taskUrls(files, task);
    // A task's end is told in its own dialect; a rendition, by the dialect it was asked through.
    const env = { publicUrl: config.publicUrl, retentionMs: config.retentionMs };
    const cb = event ? DIALECTS.map((d) => d.callback?.(task, urls, event, env)).find(Boolean) : dialectNamed(task.dialect)?.callback?.(task, urls, undefined, env);
    const owed: NewDelivery[] = cb ? [{ taskId: task.id, url: cb.url, body: cb.body, createdAt: Date.now() }] : [];
    // And to each of the tenant's endpoints subscribed to this end, in Reelay's own words.
    if (!event) {
      const subscribed = endpoints.subscribed(task.tenantId, eventType(task));
      if (subscribed.length > 0) {
        const body = JSON.stringify(toEvent(task, urls));
        for (const e of subscribed) owed.push({ taskId: task.id, endpointId: e.id, url: e.url, body, createdAt: Date.now() });
      }
    }
    return owed;
  };
  const providers = createProviders(config.routing.providers, { local, guard, maxResultBytes: config.resultMaxBytes, publicUrl: config.publicUrl });
  const router = new Router(config.routing, providers);
  const metrics = config.metrics ? new Metrics() : undefined;
  const deliverer = new Deliverer(store, fetcher, { timeoutMs: config.callbackTimeoutMs, maxAttempts: config.callbackMaxAttempts, backoffMs: config.callbackBackoffMs }, log);
  const engine = new Engine(
    { store, router, files, fetcher, binaries, imageMaxBytes: config.imageMaxBytes, notify, log, minPollMs: 1000, keyMaxInFlight: config.keyMaxInFlight, deliverer, ...(metrics ? { metrics } : {}) },
    { leaseMs: config.leaseMs, concurrency: config.engineConcurrency, downloads: config.engineDownloads, batch: Math.min(config.engineConcurrency, 256) },
  );
  local.onWake((upstreamId) => void engine.wakeUpstream('local', upstreamId));
  const tasks = new TaskService(store, guard, config, files);
  tasks.extendable = (model, spec) => router.plan({ id: '', model, spec }).length > 0;
  tasks.price = (model) => router.price(model);
  // New work wakes this process's engine, or, in an API-only process, the engines of the others.
  tasks.wakeEngine = config.engine ? () => engine.wake() : () => store.signal?.({ kind: 'due' });
  tasks.engine = engine;
  // A delivery sent again goes out from here at once when this process sends callbacks.
  tasks.wakeDeliverer = config.engine ? () => deliverer.wake() : () => {};
  // A cancel reaches this process's engine at once, and the others' through the store.
  tasks.canceled = (taskId, before) => {
    if (config.engine) engine.canceled(taskId, before);
    store.signal?.({ kind: 'canceled', taskId });
  };
  const webhooks = new WebhookService(store, guard);
  webhooks.changed = () => void endpoints.refresh();
  deliverer.endpointDisabled = (id) => endpoints.forget(id);
  const ctx: AppContext = { config, store, keys: new KeyCache(store), files, tasks, previews: new Previews(files, binaries), webhooks, log };
  // An engine-only process answers health, readiness and metrics; the API is served elsewhere.
  const serveApi = config.role !== 'engine';
  // The dashboard is mounted like a door, beside the API it shows.
  const app = await buildServer(ctx, serveApi ? [...DIALECTS, ...(config.dashboard ? [dashboard] : [])] : []);
  if (serveApi) registerUpstreamCallbacks(app, config.routing, (provider, upstreamId) => engine.wakeUpstream(provider, upstreamId));
  if (metrics) {
    app.get('/metrics', { config: { doc: { summary: 'Prometheus metrics', description: 'With `REELAY_METRICS=on`.', responses: { 200: { description: 'The text exposition format', type: 'text/plain', schema: { type: 'string' } } } } } }, async (_req, reply) => {
      // This engine's own counts are every job's only where it is the store's single writer.
      const counts = store.capabilities.singleWriter ? engine.gate.counts() : await store.countInFlight();
      // The store counts only providers with a job running: every configured one reads 0 without
      // one, and a provider gone from the counts must not keep its last value.
      metrics.inFlight.reset();
      for (const provider of new Set([...config.routing.providers.keys(), ...Object.keys(counts)])) metrics.inFlight.set({ provider }, counts[provider] ?? 0);
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  }

  // The retention sweep runs where tasks run; with many engines each sweeps, in batches that skip
  // leased tasks, so two sweeps at once only repeat deletes.
  const runSweep = () => sweep(store, files, rendersDir, config.retentionMs, Date.now(), log).catch((e: Error) => log.error({ err: e.message }, 'sweep failed'));
  let sweeper: NodeJS.Timeout | undefined;
  if (config.engine) {
    await endpoints.start();
    void runSweep();
    sweeper = setInterval(runSweep, Math.min(config.retentionMs / 24, 3_600_000));
    await engine.start();
    deliverer.start();
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    ctx,
    engine,
    ...(firstKey ? { firstKey } : {}),
    close() {
      closing ??= (async () => {
        tasks.draining = true;
        clearInterval(sweeper);
        endpoints.stop();
        await engine.stop();
        await deliverer.stop();
        await app.close();
        await Promise.all([...providers.values()].map((p) => p.close?.()));
        await fetcher.close();
        await store.close();
        await objects.close();
      })();
      return closing;
    },
  };
}
