import type { FastifyRequest } from 'fastify';

/**
 * Where a dialect's clients put their key. Each reads the request and gives the token, or undefined
 * when there is none; the key cache and the store only ever see the token.
 */
export type Credentials = (req: FastifyRequest) => string | undefined;

/** `Authorization: Bearer <token>` (kie, kkiai, OpenAI). */
export const bearer: Credentials = (req) => bearerToken(req.headers.authorization);

/** Google's carriers: the `x-goog-api-key` header, else the `key` query parameter; a Bearer header too. */
export const googleApiKey: Credentials = (req) => {
  const header = req.headers['x-goog-api-key'];
  if (typeof header === 'string') return token(header);
  const query = (req.query as Record<string, unknown> | undefined)?.key;
  if (typeof query === 'string') return token(query);
  return bearer(req);
};

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization || authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  return token(authorization.slice(7));
}

function token(raw: string): string | undefined {
  const t = raw.trim();
  return t && !/\s/.test(t) ? t : undefined;
}
