import { bearer } from '../../http/credentials.js';
import type { Dialect } from '../port.js';
import { KIE_ID, kieTaskId } from './ids.js';
import { toCallback, toUhdCallback } from './mapper.js';
import { KIE, kieReplyError, kieRoutes } from './routes.js';

/** kie.ai's Veo API (`/api/v1/veo/*`, and `/api/v1/chat/credit`), with its callbacks (`callBackUrl`). */
export const kie: Dialect = {
  name: KIE,
  prefix: '/api/v1',
  doc: { tag: 'kie', description: 'kie.ai\'s Veo API: generate, record-info, 1080p and 4k renditions, extend, and the credit balance. Business errors are HTTP 200 with `code` in the body.', security: 'bearer' },
  newId: () => kieTaskId(),
  idFormat: KIE_ID,
  credentials: bearer,
  routes: kieRoutes,
  replyError: kieReplyError,
  callback(task, urls, event) {
    // A 4k rendition is asked for through kie alone, whichever door made the task.
    if (event === 'uhd') return task.uhdCallbackUrl ? { url: task.uhdCallbackUrl, body: JSON.stringify(toUhdCallback(task, urls)) } : undefined;
    return task.dialect === KIE && task.callbackUrl ? { url: task.callbackUrl, body: JSON.stringify(toCallback(task, urls)) } : undefined;
  },
};
