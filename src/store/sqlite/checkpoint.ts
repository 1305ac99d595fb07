import { once } from 'node:events';
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';

/**
 * WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs inside the commit
 * that crosses the threshold, on the committing thread: here the event loop. It copies the
 * WAL's pages into the database and syncs the file, about half the cost of a small write
 * transaction under a steady load. The main connection turns it off; a timer looks at the WAL's
 * size and, past `thresholdBytes`, a worker thread with its own connection runs a PASSIVE
 * checkpoint, which never blocks the writer. The next write after a complete checkpoint starts the
 * WAL over, and `journal_size_limit` keeps its file from staying large.
 *
 * The worker starts on the first checkpoint (a store that writes little never starts one). Should
 * the worker fail, the main connection checkpoints itself once the WAL grows four times past the
 * threshold.
 */
export class Checkpointer {
  private worker?: Worker;
  private busy = false;
  /** The WAL's size and time when a checkpoint last copied all of it (nothing new since, while unchanged). */
  private copied = '';
  private asked = '';
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly db: Database,
    private readonly file: string,
    private readonly thresholdBytes = 16 * 1024 * 1024,
    intervalMs = 100,
  ) {
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`journal_size_limit = ${4 * thresholdBytes}`);
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  private wal(): { size: number; mark: string } {
    const st = statSync(`${this.file}-wal`, { throwIfNoEntry: false });
    return { size: st?.size ?? 0, mark: st ? `${st.size}@${st.mtimeMs}` : '' };
  }

  private check(): void {
    if (this.closed) return;
    const { size, mark } = this.wal();
    if (size < this.thresholdBytes || mark === this.copied) return;
    if (this.busy) {
      // The worker is stuck or gone: do not let the WAL grow without bound.
      if (size > 4 * this.thresholdBytes) this.db.pragma('wal_checkpoint(PASSIVE)');
      return;
    }
    this.busy = true;
    this.asked = mark;
    try {
      this.ensureWorker().postMessage('checkpoint');
    } catch {
      this.busy = false;
      this.db.pragma('wal_checkpoint(PASSIVE)');
    }
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { file: this.file } });
    worker.unref();
    worker.on('message', (r: { ok: boolean; busy?: number; log?: number; checkpointed?: number }) => {
      this.busy = false;
      if (r.ok && r.busy === 0 && r.log === r.checkpointed) this.copied = this.asked;
    });
    worker.on('error', () => {
      this.worker = undefined;
      this.busy = false;
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
    });
    this.worker = worker;
    return worker;
  }

  /** Stops the timer and the worker; the closing main connection checkpoints what is left. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    // Let it close its connection (after a checkpoint in progress), then make sure it is gone.
    const exited = once(worker, 'exit');
    worker.ref();
    worker.postMessage('close');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    await worker.terminate();
  }
}
