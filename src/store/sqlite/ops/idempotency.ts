import type { Database } from 'better-sqlite3';
import type { KeyClaim, KeyRef, KeyState, OnceAnswer } from '../../port.js';
import { grouped } from '../group.js';

interface KeyRow {
  fingerprint: string;
  token: string;
  status: number | null;
  body: string | null;
  task_id: string | null;
  held_until: number;
  expires_at: number;
}

/** Idempotency keys (migration 007): taken by a request, answered with its task, replayed. */
export function keyStateOps(db: Database) {
  const get = db.prepare(`SELECT * FROM idempotency_keys WHERE tenant_id = ? AND scope = ? AND key = ?`);
  const put = db.prepare(
    `INSERT OR REPLACE INTO idempotency_keys (tenant_id, scope, key, fingerprint, token, task_id, status, body, created_at, held_until, expires_at)
     VALUES (@tenantId, @scope, @key, @fingerprint, @token, NULL, NULL, NULL, @now, @heldUntil, @expiresAt)`,
  );
  const answer = db.prepare(
    `UPDATE idempotency_keys SET status = @status, body = @body, task_id = @taskId
     WHERE tenant_id = @tenantId AND scope = @scope AND key = @key AND token = @token AND status IS NULL`,
  );
  const drop = db.prepare(
    `DELETE FROM idempotency_keys WHERE tenant_id = @tenantId AND scope = @scope AND key = @key AND token = @token AND status IS NULL`,
  );
  const purge = db.prepare(
    `DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT 1000)`,
  );

  const take = (k: KeyClaim): KeyState => {
    const row = get.get(k.tenantId, k.scope, k.key) as KeyRow | undefined;
    if (!row || row.expires_at <= k.now || (row.status === null && row.held_until <= k.now)) {
      put.run(k);
      return { kind: 'new' };
    }
    if (row.fingerprint !== k.fingerprint) return { kind: 'mismatch' };
    if (row.status === null) return { kind: 'busy' };
    return { kind: 'replay', answer: { status: row.status, body: row.body ?? '', taskId: row.task_id } };
  };
  const answerRun = (once: OnceAnswer): boolean =>
    answer.run({ ...once.ref, status: once.answer.status, body: once.answer.body, taskId: once.answer.taskId }).changes === 1;

  return {
    takeKey: grouped(db, take),
    /** The key's answer, inside the caller's transaction (a create's). */
    answerKeyNow: answerRun,
    answerKey: grouped(db, answerRun, { single: true }),
    dropKey: grouped(db, (ref: KeyRef): void => void drop.run(ref), { single: true }),
    purgeKeys: async (now: number): Promise<number> => purge.run(now).changes,
  };
}
