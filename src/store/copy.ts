import { existsSync } from 'node:fs';
import pg from 'pg';
import { migrate as migratePostgres } from './postgres/migrate.js';
import BetterSqlite3 from './sqlite/driver.js';
import { migrate as migrateSqlite } from './sqlite/migrate.js';

/** The tables, in an order that copies what rows refer to first, and their columns. */
const TABLES: { name: string; columns: string[]; identity?: true; booleans?: string[] }[] = [
  { name: 'api_keys', columns: ['id', 'tenant_id', 'hash', 'prefix', 'name', 'source', 'created_at', 'revoked_at'] },
  {
    name: 'tasks',
    columns: [
      'id', 'tenant_id', 'dialect', 'model', 'spec', 'request', 'state', 'enhanced_prompt', 'images', 'provider',
      'upstream_id', 'attempt_count', 'retry_count', 'max_retries', 'error_sleep_ms', 'last_error', 'last_error_kind',
      'failure_stage', 'callback_url', 'file_token', 'hd_state', 'progress', 'created_at', 'updated_at', 'completed_at',
      'deadline_at', 'next_run_at', 'route_index', 'submitted_at', 'fallback', 'result_url', 'uhd_state', 'uhd_callback_url',
      'cancel_outcome', 'delete_requested', 'charge', 'admitted',
    ],
    booleans: ['fallback', 'delete_requested', 'admitted'],
  },
  { name: 'attempts', columns: ['task_id', 'n', 'step', 'provider', 'upstream_id', 'started_at', 'ended_at', 'outcome', 'error'] },
  { name: 'artifacts', columns: ['task_id', 'kind', 'path', 'content_type', 'bytes', 'width', 'height', 'duration_ms', 'codec', 'created_at'] },
  {
    name: 'deliveries',
    columns: ['id', 'task_id', 'tenant_id', 'endpoint_id', 'url', 'body', 'status', 'attempts', 'next_attempt_at', 'last_error', 'last_status', 'created_at', 'delivered_at'],
    identity: true,
  },
  // The audit trail, and the endpoints task ends are sent to.
  { name: 'task_events', columns: ['id', 'task_id', 'at', 'kind', 'actor', 'from_state', 'to_state', 'detail'], identity: true },
  { name: 'webhook_endpoints', columns: ['id', 'tenant_id', 'url', 'events', 'created_at', 'disabled_at', 'disabled_reason'] },
  // The answers a retried create must get again, and the secrets receivers verify callbacks with.
  {
    name: 'idempotency_keys',
    columns: ['tenant_id', 'scope', 'key', 'fingerprint', 'token', 'task_id', 'status', 'body', 'created_at', 'held_until', 'expires_at'],
  },
  { name: 'webhook_secrets', columns: ['tenant_id', 'secret', 'created_at', 'retire_at'] },
  // Credits: the balances and every entry that made them.
  { name: 'credit_accounts', columns: ['tenant_id', 'balance', 'created_at', 'updated_at'] },
  { name: 'credit_ledger', columns: ['id', 'tenant_id', 'task_id', 'item', 'kind', 'amount', 'charged', 'at', 'note'], identity: true },
];

/** PostgreSQL takes at most 65535 parameters per statement. */
const MAX_PARAMS = 60_000;

/**
 * Copies an embedded SQLite database (`<dataDir>/reelay.sqlite`) into a PostgreSQL database, so a
 * gateway can move to the shared store without losing a task, a key or a callback owed. Every
 * row is copied as it is, in one transaction: all of it, or (on any error) nothing. Leases are not
 * copied (no engine holds a task after the move; tasks that were running are due at their time),
 * and the callbacks' sequence goes on after the last copied id.
 *
 * The gateway must be stopped first (rows written during the copy would be missed). The
 * PostgreSQL database is migrated, and must hold no task yet: a copy never merges two histories.
 * The result files stay where they are; the gateway keeps serving them from the same data folder.
 */
export async function copySqliteToPostgres(file: string, url: string): Promise<Record<string, number>> {
  if (!existsSync(file)) throw new Error(`no SQLite database at ${file}`);
  const sqlite = new BetterSqlite3(file, { fileMustExist: true });
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('error', () => {});
  try {
    // The file is brought to the current schema first, as the gateway would at start.
    migrateSqlite(sqlite);
    await migratePostgres(pool);
    const client = await pool.connect();
    client.on('error', () => {});
    try {
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM tasks');
      if (Number(rows[0]!.n) > 0) throw new Error(`the PostgreSQL database already holds ${rows[0]!.n} task(s): copy into an empty one`);
      await client.query('BEGIN');
      const counts: Record<string, number> = {};
      for (const table of TABLES) {
        const identity = table.identity === true;
        const batch = Math.floor(MAX_PARAMS / table.columns.length);
        let pending: unknown[][] = [];
        let n = 0;
        const flush = async () => {
          if (pending.length === 0) return;
          const values: unknown[] = [];
          const tuples = pending.map((row) => `(${row.map((v) => (values.push(v), `$${values.length}`)).join(', ')})`);
          await client.query(
            `INSERT INTO ${table.name} (${table.columns.join(', ')})${identity ? ' OVERRIDING SYSTEM VALUE' : ''} VALUES ${tuples.join(', ')}`,
            values,
          );
          n += pending.length;
          pending = [];
        };
        const select = sqlite.prepare(`SELECT ${table.columns.join(', ')} FROM ${table.name} ORDER BY rowid`);
        for (const row of select.iterate() as Iterable<Record<string, unknown>>) {
          pending.push(table.columns.map((c) => (table.booleans?.includes(c) ? row[c] === 1 : row[c])));
          if (pending.length >= batch) await flush();
        }
        await flush();
        if (identity) await client.query(`SELECT setval(pg_get_serial_sequence('${table.name}', 'id'), GREATEST((SELECT max(id) FROM ${table.name}), 1))`);
        counts[table.name] = n;
      }
      await client.query('COMMIT');
      return counts;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  } finally {
    sqlite.close();
    await pool.end();
  }
}
