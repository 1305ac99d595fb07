import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { StoreSignal } from '../port.js';
import type { Db } from './db.js';

const CHANNEL = 'reelay';
/** `due` signals are sent at most this often per process: an engine claims a batch per wake. */
const DUE_EVERY_MS = 100;
/** The wait before a lost listening connection is opened again. */
const RECONNECT_MS = 1000;

/**
 * Signals between the processes that share one database, over LISTEN/NOTIFY on the `reelay`
 * channel. They carry no data an engine relies on (the store is the truth; engines still claim
 * every tick), so a signal lost while a connection is down costs at most a tick.
 * - A NOTIFY takes a lock that serialises commits database-wide, so signals are never sent inside
 *   a commit: `due` at most every 100 ms per process, `upstream` once per upstream callback.
 * - Listening takes one dedicated connection per process (not from the pool, and not through a
 *   transaction-mode pooler), opened at the first subscriber and opened again when it drops.
 * - A process does not hear its own signals (each payload names its origin).
 */
export class Signals {
  private readonly origin = randomUUID().slice(0, 8);
  private readonly listeners = new Set<(s: StoreSignal) => void>();
  private listener?: pg.Client;
  private reconnect?: NodeJS.Timeout;
  private dueTimer?: NodeJS.Timeout;
  private lastDue = 0;
  private closed = false;

  constructor(
    private readonly url: string,
    /** Sends the NOTIFYs, from the pool, with its timeouts: a notify never waits forever. */
    private readonly db: Pick<Db, 'query'>,
    private readonly onError: (e: Error) => void = () => {},
  ) {}

  notify(s: StoreSignal): void {
    if (this.closed) return;
    if (s.kind === 'due') {
      const wait = this.lastDue + DUE_EVERY_MS - Date.now();
      if (wait > 0) {
        // One more `due` after the quiet time, for the creates of this interval.
        this.dueTimer ??= setTimeout(() => {
          this.dueTimer = undefined;
          this.notify({ kind: 'due' });
        }, wait);
        return;
      }
      this.lastDue = Date.now();
    }
    this.db.query('reelay_notify', 'SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ o: this.origin, ...s })]).catch((e: Error) => this.onError(e));
  }

  subscribe(fn: (s: StoreSignal) => void): () => void {
    this.listeners.add(fn);
    if (!this.listener && !this.reconnect) void this.listen();
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.stopListening();
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.dueTimer);
    this.stopListening();
  }

  private async listen(): Promise<void> {
    if (this.closed || this.listeners.size === 0) return;
    const client = new pg.Client({ connectionString: this.url, keepAlive: true });
    this.listener = client;
    const lost = (e?: Error) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      if (e) this.onError(e);
      client.end().catch(() => {});
      if (!this.closed && this.listeners.size > 0) this.reconnect = setTimeout(() => ((this.reconnect = undefined), void this.listen()), RECONNECT_MS);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (m) => {
      if (m.channel !== CHANNEL || !m.payload) return;
      let s: StoreSignal & { o?: string };
      try {
        s = JSON.parse(m.payload) as StoreSignal & { o?: string };
      } catch {
        return;
      }
      if (s.o === this.origin) return;
      const signal: StoreSignal =
        s.kind === 'upstream' ? { kind: 'upstream', provider: s.provider, upstreamId: s.upstreamId }
        : s.kind === 'canceled' ? { kind: 'canceled', taskId: s.taskId }
        : { kind: 'due' };
      for (const fn of this.listeners) fn(signal);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (e) {
      lost(e as Error);
    }
  }

  private stopListening(): void {
    clearTimeout(this.reconnect);
    this.reconnect = undefined;
    const client = this.listener;
    this.listener = undefined;
    client?.end().catch(() => {});
  }
}
