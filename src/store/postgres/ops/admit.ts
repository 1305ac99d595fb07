import type { Admission, AdmitRequest } from '../../port.js';
import type { Db } from '../db.js';

/**
 * The submission gate, shared by every engine (`Store.admitSubmission`): SQLite has none, as its
 * one engine counts in memory. Admissions to one provider take that provider's transaction-level
 * advisory lock, so two engines cannot both take its last slot; other providers' run beside.
 */
export function admitOps(db: Db) {
  return {
    admitSubmission: async (a: AdmitRequest): Promise<Admission> => {
      const off = await db.offset();
      const now = Math.round(a.now + off);
      return db.transaction(async (q, tx) => {
        await q('reelay_gate_lock', `SELECT pg_advisory_xact_lock(hashtextextended('reelay.gate:' || $1, 0))`, [a.provider]);
        const { rows } = await q<{ n: number }>(
          'reelay_gate_count',
          `SELECT (SELECT count(*) FROM tasks WHERE provider = $1 AND state = 'generating' AND upstream_id IS NOT NULL)
                + (SELECT count(*) FROM tasks WHERE slot_provider = $1 AND lease_owner IS NOT NULL AND lease_until > $2 AND id <> $3) AS n`,
          [a.provider, now, a.taskId],
        );
        if (rows[0]!.n >= a.maxInFlight) return { ok: false, waitMs: 500, why: `${a.provider} has ${a.maxInFlight} jobs running (maxInFlight)` };
        if (a.ratePerSecond !== undefined) {
          // Refilled by the time since the last take, up to one second's worth (at least one token).
          const { rows: bucket } = await q<{ tokens: number }>(
            'reelay_gate_rate',
            `INSERT INTO provider_rates AS r (provider, tokens, at) VALUES ($1, GREATEST($2::float8, 1), $3)
             ON CONFLICT (provider) DO UPDATE SET
               tokens = LEAST(GREATEST($2::float8, 1), r.tokens + GREATEST($3 - r.at, 0) / 1000.0 * $2::float8),
               at = GREATEST(r.at, $3)
             RETURNING tokens`,
            [a.provider, a.ratePerSecond, now],
          );
          const tokens = bucket[0]!.tokens;
          if (tokens < 1) {
            // Nothing is kept: the refill is computed again from the same `at` next time.
            tx.rollback();
            return { ok: false, waitMs: Math.ceil(((1 - tokens) / a.ratePerSecond) * 1000), why: `${a.provider} is at ${a.ratePerSecond} submissions per second (ratePerSecond)` };
          }
          await q('reelay_gate_take', `UPDATE provider_rates SET tokens = tokens - 1 WHERE provider = $1`, [a.provider]);
        }
        const { rowCount } = await q('reelay_gate_slot', `UPDATE tasks SET slot_provider = $1 WHERE id = $2 AND lease_owner = $3`, [a.provider, a.taskId, a.owner]);
        // The lease was lost meanwhile: whatever this step does, its commit will be refused.
        if (rowCount !== 1) {
          tx.rollback();
          return { ok: false, waitMs: 0, why: 'the task is no longer leased to this engine' };
        }
        return { ok: true };
      });
    },
  };
}
