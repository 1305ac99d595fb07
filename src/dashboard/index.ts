import type { Door } from '../http/server.js';
import { dashboardReplyError, dashboardRoutes } from './routes.js';

/**
 * The web dashboard, mounted like a door under `/dashboard` (`reelay.ts` adds it where the API
 * is served, unless `REELAY_DASHBOARD=off`): sign-in with an API key, then the overview, the
 * task list, each task's page and the "New video" form, as server-rendered HTML with htmx.
 */
export const dashboard: Door = {
  prefix: '/dashboard',
  routes: dashboardRoutes,
  replyError: dashboardReplyError,
};
