import type { Dialect } from '../port.js';
import { toCallback } from './mapper.js';
import { KIE, kieRoutes } from './routes.js';

/** kie.ai's Veo API (`/api/v1/veo/*`), with its callbacks (`callBackUrl`). */
export const kie: Dialect = {
  name: KIE,
  prefix: '/api/v1/veo',
  routes: kieRoutes,
  callback: (task, urls) => (task.callbackUrl ? { url: task.callbackUrl, body: JSON.stringify(toCallback(task, urls)) } : undefined),
};
