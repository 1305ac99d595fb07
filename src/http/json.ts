import type { FastifyInstance } from 'fastify';
import { ApiError } from '../app/errors.js';

/** No request Reelay takes nests objects and arrays more than a few levels; this is far past that. */
export const MAX_JSON_DEPTH = 64;

/**
 * How deeply `text` nests objects and arrays, read without parsing it; stops counting once past
 * `limit`. Brackets inside strings do not count.
 */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return max;
}

/**
 * How deeply an already parsed value nests objects and arrays (a multipart part typed
 * application/json arrives parsed), counted without recursion; stops once past `limit`.
 */
export function valueDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max && (max = depth) > limit) return max;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return max;
}

/**
 * Fastify's own JSON body parser (prototype and constructor poisoning refused), behind a depth
 * limit. A body nested thousands of levels deep parses, but storing it would overflow the stack
 * in `JSON.stringify`; it is refused here as a validation error, in the envelope of whichever
 * dialect the route belongs to.
 */
export function limitJsonDepth(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonDepth(body as string) > MAX_JSON_DEPTH) {
      // statusCode for routes outside the dialects (their root error handler reads it).
      const err = Object.assign(new ApiError('validation', `Request body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`), { statusCode: 400 });
      done(err, undefined);
      return;
    }
    parse(req, body as string, done);
  });
}
