import type { Dialect } from '../port.js';
import { OPENAI } from './mapper.js';
import { openaiReplyError, openaiRoutes } from './routes.js';

/** The OpenAI Videos API (`/v1/videos/*`, Sora 2 shape). No callbacks: OpenAI's webhooks are not offered yet. */
export const openai: Dialect = {
  name: OPENAI,
  prefix: '/v1/videos',
  routes: openaiRoutes,
  replyError: openaiReplyError,
};
