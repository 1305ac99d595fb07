import type { Dialect } from '../port.js';
import { KKIAI, kkiaiReplyError, kkiaiRoutes } from './routes.js';

/** The kkiai-style unified video API (`/v1/video/*`); it has no callbacks. */
export const kkiai: Dialect = {
  name: KKIAI,
  prefix: '/v1/video',
  routes: kkiaiRoutes,
  replyError: kkiaiReplyError,
};
