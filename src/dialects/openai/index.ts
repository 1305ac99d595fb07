import { bearer } from '../../http/credentials.js';
import type { Dialect } from '../port.js';
import { VIDEO_ID, videoId } from './ids.js';
import { OPENAI } from './mapper.js';
import { openaiReplyError, openaiRoutes } from './routes.js';

/** The OpenAI Videos API (`/v1/videos/*`, Sora 2 shape). No callbacks: OpenAI's webhooks are not offered yet. */
export const openai: Dialect = {
  name: OPENAI,
  prefix: '/v1/videos',
  doc: { tag: 'OpenAI', description: 'The OpenAI Videos API (Sora 2 shape) for the `openai` SDK (`baseURL` = `<reelay>/v1`): create, retrieve, list, delete, content, remix and extensions.', security: 'bearer' },
  newId: () => videoId(),
  idFormat: VIDEO_ID,
  credentials: bearer,
  routes: openaiRoutes,
  replyError: openaiReplyError,
};
