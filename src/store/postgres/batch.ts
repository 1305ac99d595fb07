/**
 * Calls of one kind that share a statement: those made in one event-loop turn, or while the
 * previous statements were out (at most `out` at once), go together, up to `max` per statement.
 * `run` answers the items of a batch, in order. When the batch statement fails, each item runs
 * again alone (one bad row must not fail the calls it happened to share a statement with), and
 * each call gets its own answer.
 * A round trip (and a write to the socket) per batch rather than per call is what lets many
 * tasks at once go through one database without queueing on it.
 */
export function batched<T, R>(run: (items: T[]) => Promise<R[]>, opts: { max: number; out: number }): (item: T) => Promise<R> {
  const waiting: { item: T; resolve(r: R): void; reject(e: unknown): void }[] = [];
  let out = 0;
  let scheduled = false;
  const schedule = () => {
    if (scheduled || out >= opts.out || waiting.length === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      while (out < opts.out && waiting.length > 0) void send(waiting.splice(0, opts.max));
    });
  };
  async function send(batch: typeof waiting): Promise<void> {
    out++;
    try {
      const results = await run(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (e) {
      if (batch.length === 1) batch[0]!.reject(e);
      else await Promise.all(batch.map((b) => run([b.item]).then((r) => b.resolve(r[0]!), b.reject)));
    } finally {
      out--;
      schedule();
    }
  }
  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      schedule();
    });
}
