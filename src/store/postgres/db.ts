import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { InsufficientCreditsError, KeyLostError } from '../port.js';

/** How a PostgreSQL store connects, and whose clock its callers' times are on. */
export interface PostgresStoreOptions {
  /** Connections in the pool. (Default: 10) */
  max?: number;
  /**
   * The server cancels a statement that runs (or waits for a lock) longer, and the call rejects
   * with an error that says so (`statement_timeout`, set when each connection opens). (Default: 30 000)
   */
  statementTimeoutMs?: number;
  /**
   * A statement without an answer this long rejects, and its connection is closed: the server
   * cannot cancel what it never received, nor deliver its answer over a network that stopped
   * carrying it (a stall, a peer gone without a reset), and the driver alone would wait forever.
   * Longer than `statementTimeoutMs`, so that a server that can answer says why itself.
   * (Default: `statementTimeoutMs` + 2 000; none when `statementTimeoutMs` is 0)
   */
  answerTimeoutMs?: number;
  /**
   * A call that finds no free connection, or cannot open one, for this long rejects: a call
   * waits about as long for a connection as for its statement. (Default: `statementTimeoutMs`,
   * kept within 1 000 and 10 000)
   */
  connectionTimeoutMillis?: number;
  /**
   * The clock of the times callers pass (`now`, lease ends, `nextRunAt`). The store measures how
   * far the database's clock is from it and moves those times onto the database's. (Default: `Date.now`)
   */
  clock?: () => number;
  /** How often that offset is measured again, in ms. (Default: 60 000) */
  clockCheckMs?: number;
  /**
   * Errors of idle connections (the server restarted, the network dropped): the pool drops the
   * connection and the next call opens another. (Default: ignored)
   */
  onError?: (err: Error) => void;
}

export type Row = Record<string, unknown>;

/** A named statement inside `Db.transaction`. */
export type Query = <R extends pg.QueryResultRow = Row>(name: string, text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

/** An offset under this is measurement noise between NTP-synced hosts, and treated as none. */
const CLOCK_NOISE_MS = 50;
const CLOCK_SAMPLES = 3;
const INT8 = 20;
/** How much longer than statement_timeout a call waits for the server's own answer. */
const ANSWER_GRACE_MS = 2000;
/** What pg says when `query_timeout` passes. */
const NO_ANSWER = 'Query read timeout';

/**
 * bigint columns are epoch milliseconds and counts, all below 2^53: numbers, not strings. Set on
 * this store's pool only, never on the `pg` module, which other code in the process may use.
 */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * SQLSTATE classes of a statement refused for the rows it holds: a data exception (22), a broken
 * constraint (23), a rollback to break a conflict with another transaction (40: deadlock,
 * serialization).
 */
const ROW_REFUSALS = new Set(['22', '23', '40']);

/**
 * Whether a failed statement was refused by the server for the rows it holds. It then applied
 * nothing (the server answered with an error, and a statement that fails is rolled back), and
 * another statement without some of those rows may well pass: a caller that sent many calls as
 * one statement may run each of them again alone.
 * Anything else is no such proof, or is shared by every call in the statement: no answer in time
 * (the statement may have been applied and only its answer lost, so running it again could apply
 * it twice), a connection that broke or never came, a statement timeout.
 */
export function refusedForItsRows(e: unknown): boolean {
  for (let err = e; err instanceof Error; err = err.cause) {
    if (err instanceof pg.DatabaseError) return ROW_REFUSALS.has(String(err.code).slice(0, 2));
  }
  return false;
}

/** One pool, its named statements, and the offset from the callers' clock to the database's. */
export class Db {
  readonly pool: pg.Pool;
  private readonly statementTimeoutMs: number;
  private readonly answerTimeoutMs: number;
  private readonly connectionTimeoutMs: number;
  private readonly clock: () => number;
  private readonly clockCheckMs: number;
  private offsetMs = 0;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private measuring?: Promise<number>;

  constructor(url: string, opts: PostgresStoreOptions = {}) {
    this.statementTimeoutMs = opts.statementTimeoutMs ?? 30_000;
    // statement_timeout 0 is PostgreSQL's "no limit": then calls wait for answers as long as it takes.
    const limited = this.statementTimeoutMs > 0;
    this.answerTimeoutMs = opts.answerTimeoutMs ?? (limited ? this.statementTimeoutMs + ANSWER_GRACE_MS : 0);
    this.connectionTimeoutMs = opts.connectionTimeoutMillis ?? (limited ? Math.min(Math.max(this.statementTimeoutMs, 1000), 10_000) : 10_000);
    this.clock = opts.clock ?? Date.now;
    this.clockCheckMs = opts.clockCheckMs ?? 60_000;
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      statement_timeout: this.statementTimeoutMs,
      connectionTimeoutMillis: this.connectionTimeoutMs,
      keepAlive: true,
      types,
    });
    // Without a listener, an idle connection's error (a server restart) would crash the process.
    this.pool.on('error', opts.onError ?? (() => {}));
  }

  /**
   * Runs one statement, named unless `named` is false: PostgreSQL then plans it once per
   * connection. Each name must always go with the same text. `name` also labels errors.
   */
  async query<R extends pg.QueryResultRow = Row>(name: string, text: string, values: unknown[] = [], named = true): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(this.statement(text, values, named ? name : undefined));
    } catch (e) {
      throw this.describe(e, name);
    }
  }

  /**
   * Runs `fn` in a transaction on one connection, with named statements (`q`), and commits, unless
   * `fn` asked for a rollback (`tx.rollback()`) or threw (then it rolls back and rethrows).
   */
  async transaction<R>(fn: (q: Query, tx: { rollback(): void }) => Promise<R>): Promise<R> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.describe(e, 'transaction');
    }
    // A connection that breaks between two statements (the server restarting) says so with an
    // 'error' event, which must not go unheard (it would end the process); the next statement fails.
    const onBroken = () => {};
    client.on('error', onBroken);
    let rollback = false;
    let failed = false;
    let op = 'BEGIN';
    try {
      await client.query(this.statement('BEGIN'));
      const q: Query = async (name, text, values = []) => {
        op = name;
        return client.query(this.statement(text, values, name));
      };
      const result = await fn(q, { rollback: () => void (rollback = true) });
      op = rollback ? 'ROLLBACK' : 'COMMIT';
      await client.query(this.statement(rollback ? 'ROLLBACK' : 'COMMIT'));
      return result;
    } catch (e) {
      // A connection without answers would hold the ROLLBACK as long again: it is closed instead
      // (below), and the server rolls back when it sees it close.
      const rolledBack = (e as Error).message !== NO_ANSWER && (await client.query(this.statement('ROLLBACK')).then(() => true, () => false));
      // The caller's own refusal (too few credits, a key held by another request) leaves a sound
      // connection once rolled back; an error of the database or of the connection may not.
      failed = !(rolledBack && (e instanceof InsufficientCreditsError || e instanceof KeyLostError));
      throw this.describe(e, op);
    } finally {
      // A connection whose transaction failed is closed, not reused (it may be broken).
      client.off('error', onBroken);
      client.release(failed);
    }
  }

  /**
   * A statement with the answer timeout (pg's `query_timeout`, which its types do not declare per
   * statement). It is set per statement, not on the pool: migrations (`migrate.ts`) use the
   * pool's connections and may wait for another process's migrations as long as they take.
   */
  private statement(text: string, values: unknown[] = [], name?: string): pg.QueryConfig {
    // (pg reads a query_timeout of 0 as none.)
    const config: pg.QueryConfig & { query_timeout: number } = { text, values, query_timeout: this.answerTimeoutMs };
    if (name !== undefined) config.name = name;
    return config;
  }

  /**
   * What to add to a caller's time to put it on the database's clock. Measured at first use (the
   * call waits) and again every `clockCheckMs` (in the background: calls go on with the last one).
   */
  offset(): number | Promise<number> {
    if (performance.now() - this.checkedAt < this.clockCheckMs) return this.offsetMs;
    const measuring = (this.measuring ??= this.measure().finally(() => (this.measuring = undefined)));
    if (this.checkedAt === Number.NEGATIVE_INFINITY) return measuring;
    measuring.catch(() => {}); // the next call measures again
    return this.offsetMs;
  }

  /**
   * The database's clock minus ours, from the round trip with the least delay of a few: the
   * database read its clock about halfway through it.
   */
  private async measure(): Promise<number> {
    let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
    for (let i = 0; i < CLOCK_SAMPLES; i++) {
      const before = this.clock();
      const { rows } = await this.query<{ now: number }>('reelay_clock', `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now`);
      const after = this.clock();
      if (after - before < best.rtt) best = { rtt: after - before, offset: rows[0]!.now - (before + after) / 2 };
    }
    this.offsetMs = Math.abs(best.offset) < CLOCK_NOISE_MS ? 0 : Math.round(best.offset);
    this.checkedAt = performance.now();
    return this.offsetMs;
  }

  private describe(e: unknown, op: string): Error {
    const err = e instanceof Error ? e : new Error(String(e));
    const code = (err as { code?: unknown }).code;
    if (code === '57014' && /statement timeout/.test(err.message)) {
      return Object.assign(new Error(`PostgreSQL store: ${op} ran longer than statement_timeout (${this.statementTimeoutMs} ms) and was cancelled`, { cause: err }), { code });
    }
    if (err.message === NO_ANSWER) {
      return new Error(`PostgreSQL store: ${op} had no answer from the database within ${this.answerTimeoutMs} ms, and its connection was closed`, { cause: err });
    }
    if (/timeout exceeded when trying to connect/.test(err.message)) {
      // The pool had no connection to give within the time.
      return new Error(`PostgreSQL store: ${op} found no free connection within ${this.connectionTimeoutMs} ms`, { cause: err });
    }
    if (/Connection terminated due to connection timeout/.test(err.message)) {
      return new Error(`PostgreSQL store: ${op} could not connect to the database within ${this.connectionTimeoutMs} ms`, { cause: err });
    }
    return err;
  }
}
