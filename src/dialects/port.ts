import type { Task } from '../core/task.js';
import type { Credentials } from '../http/credentials.js';
import type { Door } from '../http/server.js';
import type { TaskUrls } from '../results/files.js';

/** What a callback body may need beyond the task: where Reelay is, how long results are kept. */
export interface CallbackEnv {
  publicUrl: string;
  retentionMs: number;
}

/**
 * A front door: one API's wire format over the one state machine. Everything Reelay needs to know
 * about a dialect is here, so that adding one is its folder plus a line in `dialects/index.ts`.
 */
export interface Dialect extends Door {
  /** Stored as `task.dialect` for the tasks created through it. */
  name: string;
  /** The id of a task created through it, in its own format (its `ids.ts`); kkiai's names the model. */
  newId(model: string): string;
  /** What every id `newId` makes looks like. */
  idFormat: RegExp;
  /** Where its clients put their key (`http/credentials.ts`); its routes read the key with it. */
  credentials: Credentials;
  /**
   * The callback a task created through this dialect owes its client once it ends, if any; with
   * `uhd`, the one owed when the 4k rendition asked for after success is stored or failed.
   */
  callback?(task: Task, urls: TaskUrls, event?: 'uhd', env?: CallbackEnv): { url: string; body: string } | undefined;
}
