// The checkpointer's thread (see checkpoint.ts): its own connection to the database file, which
// copies committed WAL frames into the database when asked.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from './driver.js';

const db = new BetterSqlite3((workerData as { file: string }).file);
db.pragma('busy_timeout = 5000');
parentPort!.on('message', (msg: string) => {
  if (msg === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    parentPort!.postMessage({ ok: true, ...r });
  } catch (e) {
    parentPort!.postMessage({ ok: false, error: (e as Error).message });
  }
});
