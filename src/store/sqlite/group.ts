import type { Database, Transaction } from 'better-sqlite3';

interface Call {
  run: () => unknown;
  resolve: (r: never) => void;
  reject: (e: unknown) => void;
  ok?: boolean;
  result?: unknown;
  error?: unknown;
}

/** The calls waiting for the next group commit of one database. */
class Group {
  private pending: Call[] = [];
  private readonly all: Transaction<(batch: Call[]) => void>;

  constructor(private readonly db: Database) {
    this.all = db.transaction((batch: Call[]) => {
      for (const c of batch) {
        try {
          c.result = c.run();
          c.ok = true;
        } catch (e) {
          // Some errors (a full disk, an I/O error) end the whole transaction: then the batch
          // fails as a whole rather than going on outside any transaction.
          if (!this.db.inTransaction) throw e;
          c.error = e;
          c.ok = false;
        }
      }
    });
  }

  add(call: Call): void {
    if (this.pending.length === 0) setImmediate(this.flush);
    this.pending.push(call);
  }

  private readonly flush = (): void => {
    const batch = this.pending;
    this.pending = [];
    try {
      this.all.immediate(batch);
    } catch (e) {
      for (const c of batch) c.reject(e);
      return;
    }
    for (const c of batch) {
      if (c.ok) c.resolve(c.result as never);
      else c.reject(c.error);
    }
  };
}

const groups = new WeakMap<Database, Group>();

/**
 * Group commit: calls that arrive in the same turn of the event loop, of every grouped function
 * of one database, run in one transaction (one WAL write instead of one each). Each caller's
 * promise settles after the shared commit, and one call's failure undoes only that call: a call of
 * several statements runs in its own savepoint; `single: true` marks a function that runs one
 * statement, which SQLite undoes by itself when it fails (no savepoint to pay for).
 */
export function grouped<A extends unknown[], R>(db: Database, fn: (...args: A) => R, opts: { single?: boolean } = {}): (...args: A) => Promise<R> {
  let group = groups.get(db);
  if (!group) groups.set(db, (group = new Group(db)));
  const g = group;
  const run = opts.single ? fn : db.transaction(fn);
  return (...args: A) =>
    new Promise<R>((resolve, reject) => {
      g.add({ run: () => run(...args), resolve: resolve as (r: never) => void, reject });
    });
}
