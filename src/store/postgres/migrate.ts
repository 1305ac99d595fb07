import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** The advisory lock every migrating process takes: `Reelay` in ASCII, 0x5265656c6179. */
const MIGRATE_LOCK = 90_595_446_776_185;

export interface Migration {
  version: number;
  name: string;
  file: string;
}

/** The numbered, forward-only migrations (`001_name.sql`, …), in order. */
export function migrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f.slice(4, -4), file: MIGRATIONS_DIR + f }));
}

/**
 * Applies the migrations the database has not seen, each in its own transaction, and returns how
 * many. `reelay_migrations` records them. Every caller takes the same session advisory lock on
 * one connection first, so of many processes migrating at once one applies each migration and the
 * others wait, then find nothing to do. The connection is closed afterwards, lock and all.
 */
export async function migrate(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  // A connection lost mid-migration fails the statement it was running; its 'error' event must
  // not end the process.
  client.on('error', () => {});
  try {
    // A migration may run long, and waiting for another process's migrations is part of the job.
    await client.query('SET statement_timeout = 0');
    await client.query(`SELECT pg_advisory_lock(${MIGRATE_LOCK})`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS reelay_migrations (
         version     integer PRIMARY KEY,
         name        text NOT NULL,
         applied_at  bigint NOT NULL
       )`,
    );
    const { rows } = await client.query<{ version: number }>('SELECT version FROM reelay_migrations');
    const done = new Set(rows.map((r) => r.version));
    let applied = 0;
    for (const m of migrations()) {
      if (done.has(m.version)) continue;
      const sql = readFileSync(m.file, 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query(
          `INSERT INTO reelay_migrations (version, name, applied_at)
           VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)`,
          [m.version, m.name],
        );
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`PostgreSQL migration ${m.version} (${m.name}) failed: ${(e as Error).message}`, { cause: e });
      }
      applied++;
    }
    await client.query(`SELECT pg_advisory_unlock(${MIGRATE_LOCK})`);
    return applied;
  } finally {
    // Closed rather than returned to the pool: its session changed statement_timeout, and should
    // anything above have failed it may still hold the lock, which closing releases.
    client.release(true);
  }
}
