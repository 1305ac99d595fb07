import type { Dialect } from '../port.js';
import { kkiaiRoutes } from './routes.js';

/** The kkiai-style unified video API (`/v1/video/*`); it has no callbacks. */
export const kkiai: Dialect = {
  name: 'kkiai',
  prefix: '/v1/video',
  routes: kkiaiRoutes,
};
