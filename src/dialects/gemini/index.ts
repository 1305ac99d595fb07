import { googleApiKey } from '../../http/credentials.js';
import type { Dialect } from '../port.js';
import { GEMINI_ID, geminiTaskId } from './ids.js';
import { GEMINI, geminiRoutes, send } from './routes.js';

/**
 * The Gemini API's Veo door (`/v1beta`, as `@google/genai` 2.x calls it). It owes no callback yet:
 * `webhookConfig` is stored with the request and its URIs are not called (a later issue).
 */
export const gemini: Dialect = {
  name: GEMINI,
  prefix: '/v1beta',
  newId: () => geminiTaskId(),
  idFormat: GEMINI_ID,
  credentials: googleApiKey,
  routes: geminiRoutes,
  replyError: send,
};
