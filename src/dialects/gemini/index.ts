import { googleApiKey } from '../../http/credentials.js';
import type { Dialect } from '../port.js';
import { GEMINI_ID, geminiTaskId } from './ids.js';
import { toOperation } from './mapper.js';
import { GEMINI, geminiRoutes, send } from './routes.js';

/**
 * The Gemini API's Veo door (`/v1beta`, as `@google/genai` 2.x calls it). A task created with
 * `webhookConfig.uris` owes that URI its done Operation, as a poll would answer it.
 */
export const gemini: Dialect = {
  name: GEMINI,
  prefix: '/v1beta',
  doc: { tag: 'Gemini', description: 'The Gemini API\'s Veo surface (`@google/genai`): `models/{model}:predictLongRunning`, its operations (poll, cancel) and files. The key goes in `x-goog-api-key` or `?key=`.', security: 'google' },
  newId: () => geminiTaskId(),
  idFormat: GEMINI_ID,
  credentials: googleApiKey,
  routes: geminiRoutes,
  replyError: send,
  callback(task, _urls, event, env) {
    if (event === 'uhd' || task.dialect !== GEMINI || !task.callbackUrl || !env) return undefined;
    return { url: task.callbackUrl, body: JSON.stringify(toOperation(task, env.publicUrl, Math.round(env.retentionMs / 86_400_000))) };
  },
};
