import type { KeyClaim, KeyRef, KeyState, OnceAnswer } from '../../port.js';
import type { Db, Query } from '../db.js';

// Takes the key when it is free, expired, or held past its hold without an answer; RETURNING
// names the token that holds it now (none when another request's row stays).
const TAKE = `INSERT INTO idempotency_keys AS k (tenant_id, scope, key, fingerprint, token, created_at, held_until, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (tenant_id, scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, token = EXCLUDED.token,
    task_id = NULL, status = NULL, body = NULL, created_at = EXCLUDED.created_at,
    held_until = EXCLUDED.held_until, expires_at = EXCLUDED.expires_at
  WHERE k.expires_at <= EXCLUDED.created_at OR (k.status IS NULL AND k.held_until <= EXCLUDED.created_at)
  RETURNING token`;
const READ = `SELECT fingerprint, status, body, task_id FROM idempotency_keys WHERE tenant_id = $1 AND scope = $2 AND key = $3`;
const ANSWER = `UPDATE idempotency_keys SET status = $5, body = $6, task_id = $7
  WHERE tenant_id = $1 AND scope = $2 AND key = $3 AND token = $4 AND status IS NULL`;
const DROP = `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND scope = $2 AND key = $3 AND token = $4 AND status IS NULL`;
const PURGE = `DELETE FROM idempotency_keys WHERE (tenant_id, scope, key) IN (
  SELECT tenant_id, scope, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT 1000)`;

/** Records a key's answer (inside the caller's transaction, with its `q`); false when the key is not held. */
export async function answerIn(q: Query, once: OnceAnswer): Promise<boolean> {
  const { ref, answer } = once;
  const values = [ref.tenantId, ref.scope, ref.key, ref.token, answer.status, answer.body, answer.taskId];
  return ((await q('reelay_key_answer', ANSWER, values)).rowCount ?? 0) === 1;
}

/** Idempotency keys (migration 005): taken by a request, answered with its task, replayed. */
export function keyStateOps(db: Db) {
  return {
    async takeKey(k: KeyClaim): Promise<KeyState> {
      const off = await db.offset();
      const at = (t: number) => Math.round(t + off);
      const ref = [k.tenantId, k.scope, k.key];
      const taken = await db.query<{ token: string }>('reelay_key_take', TAKE, [...ref, k.fingerprint, k.token, at(k.now), at(k.heldUntil), at(k.expiresAt)]);
      if (taken.rows[0]?.token === k.token) return { kind: 'new' };
      const { rows } = await db.query<{ fingerprint: string; status: number | null; body: string | null; task_id: string | null }>('reelay_key_read', READ, ref);
      const row = rows[0];
      // Gone between the two statements (purged, or let go by its request): asked again, it is new.
      if (!row) return { kind: 'busy' };
      if (row.fingerprint !== k.fingerprint) return { kind: 'mismatch' };
      if (row.status === null) return { kind: 'busy' };
      return { kind: 'replay', answer: { status: row.status, body: row.body ?? '', taskId: row.task_id } };
    },
    answerKey: (once: OnceAnswer): Promise<boolean> => answerIn((name, text, values) => db.query(name, text, values), once),
    async dropKey(ref: KeyRef): Promise<void> {
      await db.query('reelay_key_drop', DROP, [ref.tenantId, ref.scope, ref.key, ref.token]);
    },
    async purgeKeys(now: number): Promise<number> {
      const off = await db.offset();
      return (await db.query('reelay_key_purge', PURGE, [Math.round(now + off)])).rowCount ?? 0;
    },
  };
}
