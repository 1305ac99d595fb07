import type { Logger } from 'pino';
import type { GuardedFetcher } from '../net/fetch.js';
import { coerceError } from '../providers/port.js';
import type { Delivery, Store } from '../store/port.js';

export interface DelivererOptions {
  /** How long a receiver may take (default 15000 ms, as kie documents). */
  timeoutMs: number;
  /** Tries per callback (default 6). */
  maxAttempts: number;
  /** First retry delay; each later one is 4× longer, at most 10 minutes (default 5000 ms). */
  backoffMs: number;
  /** How often due deliveries are looked for (default 500 ms). */
  tickMs?: number;
}

/** The delay before try `n + 1` after `n` failed tries. */
export function backoff(n: number, baseMs: number): number {
  return Math.min(baseMs * 4 ** Math.max(0, n - 1), 600_000);
}

/**
 * Sends callbacks. Deliveries are rows written in the same transaction as the task's terminal
 * state (an outbox), so a crash never loses one; each is POSTed as JSON until the receiver answers
 * 2xx or the tries run out. A failing receiver never changes the task.
 */
export class Deliverer {
  private timer?: NodeJS.Timeout;
  private running = new Set<Promise<void>>();
  private busy = false;

  constructor(
    private readonly store: Store,
    private readonly fetcher: GuardedFetcher,
    private readonly opts: DelivererOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 500);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.running]);
  }

  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const due = await this.store.claimDueDeliveries(Date.now(), this.opts.timeoutMs * 2, 16);
      for (const d of due) {
        const p = this.deliver(d).finally(() => this.running.delete(p));
        this.running.add(p);
      }
    } catch (e) {
      this.log.error({ err: coerceError(e).message }, 'delivery tick failed');
    } finally {
      this.busy = false;
    }
  }

  private async deliver(d: Delivery): Promise<void> {
    const attempts = d.attempts + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await this.fetcher.fetch(d.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Reelay-Callback/1' },
        body: d.body,
        timeoutMs: this.opts.timeoutMs,
        maxBytes: 64 * 1024,
      });
      status = res.status;
      if (status < 200 || status >= 300) error = `receiver answered HTTP ${status}`;
    } catch (e) {
      error = coerceError(e).message;
    }
    const done = error === null;
    const giveUp = !done && attempts >= this.opts.maxAttempts;
    await this.store.finishDelivery({
      id: d.id,
      attempts,
      status: done ? 'delivered' : giveUp ? 'failed' : 'pending',
      nextAttemptAt: done || giveUp ? null : Date.now() + backoff(attempts, this.opts.backoffMs),
      lastError: error,
      lastStatus: status,
      deliveredAt: done ? Date.now() : null,
    });
    if (!done) this.log.warn({ taskId: d.taskId, attempts, err: error, giveUp }, 'callback delivery failed');
  }
}
