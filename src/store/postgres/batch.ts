import { refusedForItsRows } from './db.js';

export interface BatchOptions<T> {
  /** Items in one statement at most. */
  max: number;
  /** Statements out at once at most. */
  out: number;
  /**
   * Whether `item` may join `batch`, the items taken so far (default: any may). One that may not
   * waits for a later batch, keeping its place in the queue.
   */
  joins?: (item: T, batch: readonly T[]) => boolean;
  /**
   * Items of one key run one at a time, in the order they were asked for: never two in one batch,
   * nor in two batches out at once (a later one waits for the earlier one's answer).
   */
  key?: (item: T) => string;
  /** The order of a batch's items, in which `run` gets them (the order its rows are locked in). */
  order?: (a: T, b: T) => number;
}

/**
 * Calls of one kind that share a statement: those made in one event-loop turn, or while the
 * previous statements were out (at most `out` at once), go together, up to `max` per statement.
 * `run` answers the items of a batch, in order; a batch of one is one call alone.
 * A round trip (and a write to the socket) per batch rather than per call is what lets many
 * tasks at once go through one database without queueing on it.
 *
 * When a batch's statement fails, what happens next depends on what the error proves:
 * - the server refused it for the rows it holds (`refusedForItsRows`): nothing was applied, and
 *   each item runs again alone, so one bad row does not fail the calls it happened to share a
 *   statement with;
 * - otherwise every call of the batch rejects with the error, and its caller decides. With no
 *   answer in time, or a connection that broke while it ran, the statement may have been applied
 *   and only its answer lost: running its items again could apply them twice. A statement
 *   timeout or a missing connection is shared by all of them, and would only be met again.
 */
export function batched<T, R>(run: (items: T[]) => Promise<R[]>, opts: BatchOptions<T>): (item: T) => Promise<R> {
  type Waiting = { item: T; resolve(r: R): void; reject(e: unknown): void };
  const waiting: Waiting[] = [];
  /** Keys of the items out (with `key`). */
  const busy = new Set<string>();
  let out = 0;
  let scheduled = false;
  const schedule = () => {
    if (scheduled || out >= opts.out || waiting.length === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      while (out < opts.out && waiting.length > 0) {
        const batch = take();
        if (batch.length === 0) break; // all that waits waits for a key out
        void send(batch);
      }
    });
  };
  const take = (): Waiting[] => {
    let batch: Waiting[];
    const { joins, key, order } = opts;
    if (!joins && !key) batch = waiting.splice(0, opts.max);
    else {
      batch = [];
      const items: T[] = [];
      // A key passed over stays taken for this batch: an item behind it must not go first.
      const seen = new Set<string>();
      for (let i = 0; i < waiting.length && batch.length < opts.max; ) {
        const w = waiting[i]!;
        const k = key?.(w.item);
        const free = k === undefined || (!busy.has(k) && !seen.has(k));
        if (k !== undefined) seen.add(k);
        if (!free || (joins && !joins(w.item, items))) i++;
        else {
          batch.push(w);
          items.push(w.item);
          waiting.splice(i, 1);
        }
      }
    }
    return order ? batch.sort((a, b) => order(a.item, b.item)) : batch;
  };
  async function send(batch: Waiting[]): Promise<void> {
    out++;
    const keys = opts.key ? batch.map((b) => opts.key!(b.item)) : [];
    for (const k of keys) busy.add(k);
    try {
      const results = await run(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (e) {
      if (batch.length === 1 || !refusedForItsRows(e)) for (const b of batch) b.reject(e);
      else await Promise.all(batch.map((b) => run([b.item]).then((r) => b.resolve(r[0]!), b.reject)));
    } finally {
      out--;
      for (const k of keys) busy.delete(k);
      schedule();
    }
  }
  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      schedule();
    });
}
