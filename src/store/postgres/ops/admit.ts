import type { Admission, AdmitRequest } from '../../port.js';
import type { Db } from '../db.js';

/** Tasks asking in one call at most; more wait for the next. */
const MAX_BATCH = 500;

interface Asking {
  a: AdmitRequest;
  resolve(x: Admission): void;
  reject(e: unknown): void;
}

/** The asks of one provider, engine and limits: those waiting, and whether a call is out. */
interface Queue {
  waiting: Asking[];
  busy: boolean;
}

/**
 * The submission gate, shared by every engine (`Store.admitSubmission`): SQLite has none, as its
 * one engine counts in memory. `reelay_admit` (migration 002) serves a batch of asks in one round
 * trip under the provider's transaction-level advisory lock, so two engines cannot both take its
 * last slot, and the lock is held only while the server works.
 *
 * Asks are grouped per provider, engine and limits: those made in one event-loop turn go
 * together, and while a call is out the next asks gather and go as one call when it returns
 * (at most one call per group at a time, in the order asked).
 */
export function admitOps(db: Db) {
  const queues = new Map<string, Queue>();

  async function send(key: string, q: Queue): Promise<void> {
    const batch = q.waiting.splice(0, MAX_BATCH);
    try {
      const first = batch[0]!.a;
      const off = await db.offset();
      const now = Math.round(Math.max(...batch.map((b) => b.a.now)) + off);
      const tasks = [...new Set(batch.map((b) => b.a.taskId))];
      const { rows } = await db.query<{ task_id: string; admitted: boolean; wait_ms: number; why: string | null }>(
        'reelay_admit',
        'SELECT * FROM reelay_admit($1, $2::text[], $3, $4, $5, $6)',
        [first.provider, tasks, first.owner, first.maxInFlight, first.ratePerSecond ?? null, now],
      );
      const answers = new Map(rows.map((r) => [r.task_id, r]));
      for (const b of batch) {
        const r = answers.get(b.a.taskId);
        if (!r) b.reject(new Error(`PostgreSQL store: reelay_admit gave no answer for task ${b.a.taskId}`));
        else b.resolve(r.admitted ? { ok: true } : { ok: false, waitMs: r.wait_ms, why: r.why ?? '' });
      }
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
    if (q.waiting.length > 0) return send(key, q);
    q.busy = false;
    queues.delete(key);
  }

  return {
    admitSubmission: (a: AdmitRequest): Promise<Admission> =>
      new Promise<Admission>((resolve, reject) => {
        const key = JSON.stringify([a.provider, a.owner, a.maxInFlight, a.ratePerSecond ?? null]);
        let q = queues.get(key);
        if (!q) queues.set(key, (q = { waiting: [], busy: false }));
        q.waiting.push({ a, resolve, reject });
        if (q.busy) return;
        q.busy = true;
        // The other asks of this event-loop turn join the batch.
        const queue = q;
        setImmediate(() => void send(key, queue));
      }),
  };
}
