import type { Logger } from 'pino';
import type { GuardedFetcher } from '../net/fetch.js';
import { coerceError } from '../providers/port.js';
import type { Delivery, NewDelivery, Store } from '../store/port.js';
import { ClaimLoop } from './claim-loop.js';
import { newWebhookSecret, signedHeaders } from './signing.js';

export interface DelivererOptions {
  /** How long a receiver may take (default 15000 ms, as kie documents). */
  timeoutMs: number;
  /** Tries per callback (default 10: the first and the nine retries of `RETRY_SCHEDULE_MS`). */
  maxAttempts: number;
  /**
   * When set, the first retry delay, each later one 4× longer, at most 10 minutes; unset, the
   * Standard Webhooks schedule (`RETRY_SCHEDULE_MS`).
   */
  backoffMs?: number;
  /** How often due deliveries are looked for when nothing wakes the deliverer (default 500 ms). */
  tickMs?: number;
  /** Callbacks in flight at once (default 64). */
  concurrency?: number;
}

/**
 * The waits between tries, as Standard Webhooks recommends: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
 * 14 h, 20 h and 24 h after the first, about 75 hours in all.
 */
export const RETRY_SCHEDULE_MS = [5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 504e5, 72e6, 864e5] as const;

/**
 * The delay before try `n + 1` after `n` failed tries: with `baseMs`, `baseMs` × 4^(n-1) up to 10
 * minutes; without, the schedule's `n`th wait (its last one past its end), spread by ±10 % so the
 * callbacks of tasks that ended together do not come back together.
 */
export function backoff(n: number, baseMs?: number, random: () => number = Math.random): number {
  if (baseMs !== undefined) return Math.min(baseMs * 4 ** Math.max(0, n - 1), 600_000);
  const wait = RETRY_SCHEDULE_MS[Math.min(Math.max(n, 1), RETRY_SCHEDULE_MS.length) - 1]!;
  return Math.round(wait * (0.9 + 0.2 * random()));
}

/** How long a tenant's signing secrets are used before they are read again (a rotation shows within it). */
const SECRETS_MS = 10_000;

/**
 * Sends callbacks. Deliveries are rows written in the same transaction as the task's terminal
 * state (an outbox), so a crash never loses one; each is POSTed as JSON until the receiver answers
 * 2xx or the tries run out. A failing receiver never changes the task.
 */
export class Deliverer {
  private timer?: NodeJS.Timeout;
  private running = new Set<Promise<void>>();
  private stopped = true;
  private readonly secrets = new Map<string, { at: number; secrets: Promise<string[]> }>();

  constructor(
    private readonly store: Store,
    private readonly fetcher: GuardedFetcher,
    private readonly opts: DelivererOptions,
    private readonly log: Logger,
  ) {}

  /** Called once an endpoint that answered 410 is disabled (the engine then reads its endpoints again). */
  endpointDisabled?: (endpointId: string) => void;

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 500);
    this.wake();
  }

  /** Looks for due callbacks now (a task just ended) instead of at the next tick. */
  wake(): void {
    if (!this.stopped) setImmediate(() => void this.tick());
  }

  /** How long a delivery stays ours once claimed or handed over. */
  get leaseMs(): number {
    return this.opts.timeoutMs * 2;
  }

  /**
   * Whether `n` new callbacks can be handed over at once (see `adopt`): the committing engine
   * then inserts them leased to this process, so no claim is needed to send them.
   */
  hasRoom(n: number): boolean {
    return !this.stopped && this.running.size + n <= (this.opts.concurrency ?? 64);
  }

  /** Sends callbacks that were inserted leased to this process (their ids set by the store). */
  adopt(deliveries: NewDelivery[], tenantId?: string): void {
    for (const d of deliveries) {
      if (d.id === undefined) continue;
      this.track(this.deliver({ ...d, id: d.id, tenantId: tenantId ?? null, status: 'pending', attempts: 0, nextAttemptAt: d.createdAt, lastError: null, lastStatus: null, deliveredAt: null }));
    }
  }

  private track(delivery: Promise<void>): void {
    const concurrency = this.opts.concurrency ?? 64;
    const p = delivery.finally(() => {
      this.running.delete(p);
      // A slot came free while callbacks were waiting for one.
      if (this.running.size === concurrency - 1) this.wake();
    });
    this.running.add(p);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.running]);
  }

  /** Claims due callbacks while there are free slots and the claims come back full. */
  tick(): Promise<void> {
    return this.claims.run();
  }

  private readonly claims = new ClaimLoop(async () => {
    const concurrency = this.opts.concurrency ?? 64;
    const free = concurrency - this.running.size;
    if (free <= 0 || this.stopped) return false;
    const due = await this.store.claimDueDeliveries(Date.now(), this.opts.timeoutMs * 2, Math.min(free, 64));
    for (const d of due) this.track(this.deliver(d));
    return due.length === Math.min(free, 64);
  }, (e: unknown) => this.log.error({ err: coerceError(e).message }, 'delivery tick failed'));

  /** The live signing secrets of the tenant a delivery was owed for (by its task on older rows). */
  private async secretsOf(d: Delivery): Promise<string[]> {
    const tenantId = d.tenantId ?? (await this.store.tenantOfTask(d.taskId));
    if (tenantId === undefined) return [];
    const now = Date.now();
    let kept = this.secrets.get(tenantId);
    if (!kept || now - kept.at > SECRETS_MS) {
      kept = { at: now, secrets: this.store.webhookSecrets(tenantId, now, newWebhookSecret()) };
      this.secrets.set(tenantId, kept);
      kept.secrets.catch(() => this.secrets.delete(tenantId));
    }
    return kept.secrets;
  }

  private async deliver(d: Delivery): Promise<void> {
    const attempts = d.attempts + 1;
    const started = performance.now();
    let status: number | null = null;
    let error: string | null = null;
    let secrets: string[] = [];
    // Signed on every try: the id stays, the timestamp and the signatures are the try's.
    const post = () =>
      this.fetcher.fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Reelay-Callback/1',
          ...signedHeaders(secrets, `msg_${d.taskId}_${d.id}`, Math.floor(Date.now() / 1000), d.body, d.taskId),
        },
        body: d.body,
        timeoutMs: this.opts.timeoutMs,
        maxBytes: 64 * 1024,
        // A redirect is an answer, not a place to send the callback to (Standard Webhooks).
        maxRedirects: 0,
      });
    let gone = false;
    try {
      secrets = await this.secretsOf(d);
      // A kept-alive connection the receiver closed at the same moment resets: try once more at
      // once on a fresh one rather than waiting for the backoff.
      const res = await post().catch((e: unknown) => {
        if (/ECONNRESET|socket hang up|other side closed/i.test(coerceError(e).message + String((e as { cause?: unknown }).cause ?? ''))) return post();
        throw e;
      });
      status = res.status;
      // 410 Gone: the receiver says this URL is no more; no more tries.
      gone = status === 410;
      if (status < 200 || status >= 300) error = gone ? 'receiver answered HTTP 410 Gone: not tried again' : `receiver answered HTTP ${status}`;
    } catch (e) {
      error = coerceError(e).message;
    }
    const done = error === null;
    const giveUp = !done && (gone || attempts >= this.opts.maxAttempts);
    await this.store.finishDelivery({
      id: d.id,
      at: Date.now(),
      ms: performance.now() - started,
      attempts,
      status: done ? 'delivered' : giveUp ? 'failed' : 'pending',
      nextAttemptAt: done || giveUp ? null : Date.now() + backoff(attempts, this.opts.backoffMs),
      lastError: error,
      lastStatus: status,
      deliveredAt: done ? Date.now() : null,
    });
    if (!done) this.log.warn({ taskId: d.taskId, attempts, err: error, giveUp }, 'callback delivery failed');
    // An endpoint that says it is gone gets nothing more.
    // What was still owed to it fails in the same transaction as the disable.
    if (gone && d.endpointId) {
      const id = d.endpointId;
      await this.store.disableEndpoint(id, Date.now(), `receiver answered HTTP 410 Gone on ${new Date().toISOString()}`).then(
        () => this.endpointDisabled?.(id),
        (e: unknown) => this.log.warn({ err: coerceError(e).message }, 'could not disable a webhook endpoint'),
      );
    }
  }
}
