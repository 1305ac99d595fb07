import { bearer } from '../../http/credentials.js';
import type { Dialect } from '../port.js';
import { KKIAI_ID, kkiaiTaskId } from './ids.js';
import { KKIAI, kkiaiReplyError, kkiaiRoutes } from './routes.js';

/** The kkiai-style unified video API (`/v1/video/*`); it has no callbacks. */
export const kkiai: Dialect = {
  name: KKIAI,
  prefix: '/v1/video',
  doc: { tag: 'kkiai', description: 'The kkiai-style unified video API of new-api resellers: create and query.', security: 'bearer' },
  newId: (model) => kkiaiTaskId(model, Date.now()),
  idFormat: KKIAI_ID,
  credentials: bearer,
  routes: kkiaiRoutes,
  replyError: kkiaiReplyError,
};
