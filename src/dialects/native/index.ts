import { bearer } from '../../http/credentials.js';
import type { Dialect } from '../port.js';
import { NATIVE_ID, nativeTaskId } from './ids.js';
import { toEvent } from './mapper.js';
import { NATIVE, nativeReplyError, nativeRoutes } from './routes.js';

/**
 * Reelay's own API (`/reelay/v1`): the same tasks as every door's, for Reelay's CLI, client and
 * dashboard. A task created here with `webhook_url` owes it `{type, timestamp, data}` once it ends.
 */
export const native: Dialect = {
  name: NATIVE,
  prefix: '/reelay/v1',
  doc: { tag: 'Reelay', description: 'Reelay\'s own API: every task of the key, whichever door made it, in the state machine\'s words; cancel, audit trail, callbacks, webhook endpoints, credits and live streams. Errors are RFC 9457 problem details.', security: 'bearer' },
  newId: () => nativeTaskId(),
  idFormat: NATIVE_ID,
  credentials: bearer,
  routes: nativeRoutes,
  replyError: nativeReplyError,
  callback(task, urls, event) {
    if (event === 'uhd' || task.dialect !== NATIVE || !task.callbackUrl) return undefined;
    return { url: task.callbackUrl, body: JSON.stringify(toEvent(task, urls)) };
  },
};
