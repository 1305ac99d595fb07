import { join } from 'node:path';
import { withTaskCache } from './cache.js';
import type { Store } from './port.js';
import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';

/** Where the store is and how to reach it (from `Config`). */
export interface StoreSettings {
  /** The data folder: the embedded SQLite file is `<dataDir>/reelay.sqlite`. */
  dataDir: string;
  /** `postgres://…`: a PostgreSQL database shared by many processes, instead of the SQLite file. */
  databaseUrl?: string;
  /** Connections per process to PostgreSQL. */
  databasePool?: number;
  /** The longest a PostgreSQL statement may run before it fails with a clear error. */
  databaseTimeoutMs?: number;
}

export interface OpenOptions {
  /** Apply pending migrations (a server at start; `reelay migrate`). */
  migrate?: boolean;
  /**
   * Put the task read cache in front (the server's query path). It is added only where the store
   * says this process is its single writer; a shared store is always read fresh.
   */
  cache?: boolean;
}

export function backendOf(s: StoreSettings): 'sqlite' | 'postgres' {
  return s.databaseUrl ? 'postgres' : 'sqlite';
}

/** Opens the configured store: PostgreSQL when a database URL is set, else the embedded SQLite file. */
export async function openStore(s: StoreSettings, opts: OpenOptions = {}): Promise<Store> {
  const store = s.databaseUrl
    ? openPostgresStore(s.databaseUrl, {
        ...(s.databasePool !== undefined ? { max: s.databasePool } : {}),
        ...(s.databaseTimeoutMs !== undefined ? { statementTimeoutMs: s.databaseTimeoutMs } : {}),
      })
    : openSqliteStore(join(s.dataDir, 'reelay.sqlite'));
  try {
    if (opts.migrate) await store.migrate();
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return opts.cache && store.capabilities.singleWriter ? withTaskCache(store) : store;
}
