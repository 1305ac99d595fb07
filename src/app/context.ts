import type { Logger } from 'pino';
import type { KeyCache } from '../auth/cache.js';
import type { Config } from '../config.js';
import type { ResultFiles } from '../results/files.js';
import type { Previews } from './previews.js';
import type { Store } from '../store/port.js';
import type { TaskService } from './tasks.js';
import type { WebhookService } from './webhooks.js';

/** What the HTTP side needs: handed to every dialect's routes. */
export interface AppContext {
  config: Config;
  store: Store;
  keys: KeyCache;
  files: ResultFiles;
  tasks: TaskService;
  /** Thumbnails and spritesheets of the tasks' videos, made on first request. */
  previews: Previews;
  /** The tenants' webhook endpoints. */
  webhooks: WebhookService;
  log: Logger;
}
