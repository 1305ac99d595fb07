import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.js';
import { ApiError } from '../app/errors.js';
import type { Once } from '../app/tasks.js';
import type { Task } from '../core/task.js';
import { KeyLostError, type KeyRef, type StoredAnswer } from '../store/port.js';

/** How long a request holds its key without an answer before a repeat may take it over. */
export const KEY_HOLD_MS = 120_000;
/** The longest key taken (Stripe's limit). */
const MAX_KEY = 255;
/** What a repeat whose first request still runs is told to wait, in seconds. */
const RETRY_AFTER_S = 1;

/** Where an idempotent request is answered: the tenant, the endpoint, and the request as read. */
export interface OnceWhere {
  tenantId: string;
  /** The endpoint, as keys are scoped (`kie.generate`); the same key may be used at each. */
  scope: string;
  /** The request as the route read it (a JSON body, or a form with its files). */
  body: unknown;
  /** The HTTP status of the answer (200). */
  status?: number;
}

/**
 * The request's `Idempotency-Key`: an RFC 8941 string (`"…"`) or a bare token, 1–255 printable
 * ASCII characters. Undefined when the header is absent; a malformed one is a validation error.
 */
export function idempotencyKeyOf(req: FastifyRequest): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) throw new ApiError('validation', 'Idempotency-Key must be sent once', 'Idempotency-Key');
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (key.length === 0 || key.length > MAX_KEY || !/^[\x20-\x7e]+$/.test(key)) {
    throw new ApiError('validation', `Idempotency-Key must be 1 to ${MAX_KEY} printable ASCII characters`, 'Idempotency-Key');
  }
  return key;
}

/**
 * A digest of a request: its method, its path and its body with object keys in order (so the
 * same JSON written in another key order is the same request), each file part's bytes by their
 * SHA-256.
 */
export function fingerprint(method: string, path: string, body: unknown): string {
  const hash = createHash('sha256');
  hash.update(`${method} ${path}\n`);
  hash.update(JSON.stringify(canonical(body)) ?? 'null');
  return hash.digest('base64url');
}

function canonical(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { sha256: createHash('sha256').update(v).digest('hex') };
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/**
 * Answers a create once per `Idempotency-Key` (the IETF httpapi draft, and Stripe's rules):
 * - no key: `make` runs and its task is answered, as without this;
 * - a new key: `make` runs with a `Once`, which writes the answer to the key in the transaction
 *   that stores the task; the answer sent is those bytes. When `make` fails (bad input, a refused
 *   URL), the key is let go: nothing is stored;
 * - the same key and request, answered: the same status and body, `Idempotent-Replayed: true`;
 * - the same key and request, still running: `in_progress` (409, `Retry-After: 1`);
 * - the same key with another request (method, path or body): `key_reused` (422).
 */
export async function createOnce(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  where: OnceWhere,
  make: (once: Once | undefined) => Promise<Task>,
  answer: (task: Task) => unknown,
): Promise<FastifyReply> {
  const status = where.status ?? 200;
  const ref = await takeOrReplay(ctx, req, reply, where);
  if (ref === 'replayed') return reply;
  if (!ref) return reply.status(status).send(answer(await make(undefined)));
  let sent: StoredAnswer | undefined;
  const once: Once = {
    ref,
    answer: (task) => (sent = { status, body: JSON.stringify(answer(task)), taskId: task.id }),
  };
  try {
    await make(once);
  } catch (e) {
    throw await letGo(ctx, ref, e);
  }
  return reply.status(sent!.status).type('application/json; charset=utf-8').send(sent!.body);
}

/**
 * Answers a request that creates no task (a rendition asked for) once per `Idempotency-Key`, as
 * `createOnce` does; its answer is written to the key once `run` has answered.
 */
export async function answerOnce(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, where: OnceWhere, run: () => Promise<unknown>): Promise<FastifyReply> {
  const status = where.status ?? 200;
  const ref = await takeOrReplay(ctx, req, reply, where);
  if (ref === 'replayed') return reply;
  if (!ref) return reply.status(status).send(await run());
  let body: string;
  try {
    body = JSON.stringify(await run());
  } catch (e) {
    throw await letGo(ctx, ref, e);
  }
  if (!(await ctx.store.answerKey({ ref, answer: { status, body, taskId: null } }))) throw inProgress();
  return reply.status(status).type('application/json; charset=utf-8').send(body);
}

/** Takes the request's key (its `KeyRef`), or answers the repeat ('replayed'), or undefined: no key. */
async function takeOrReplay(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, where: OnceWhere): Promise<KeyRef | 'replayed' | undefined> {
  const key = idempotencyKeyOf(req);
  if (key === undefined) return undefined;
  const ref: KeyRef = { tenantId: where.tenantId, scope: where.scope, key, token: randomUUID() };
  const now = Date.now();
  const state = await ctx.store.takeKey({
    ...ref,
    fingerprint: fingerprint(req.method, req.url.split('?')[0]!, where.body),
    now,
    heldUntil: now + KEY_HOLD_MS,
    expiresAt: now + ctx.config.idempotencyTtlMs,
  });
  switch (state.kind) {
    case 'new':
      return ref;
    case 'busy':
      throw inProgress();
    case 'mismatch':
      throw new ApiError('key_reused', `Idempotency-Key ${key} was already used with a different request; use a new key for a new request`, 'Idempotency-Key');
    case 'replay':
      reply.header('idempotent-replayed', 'true');
      if (state.answer.taskId) reply.header('x-reelay-task-id', state.answer.taskId);
      reply.status(state.answer.status).type('application/json; charset=utf-8').send(state.answer.body);
      return 'replayed';
  }
}

function inProgress(): ApiError {
  return new ApiError('in_progress', 'A request with this Idempotency-Key is still being processed; retry shortly to get its answer', 'Idempotency-Key', RETRY_AFTER_S);
}

/** The error a request that holds its key ends in, once the key is let go (nothing was stored). */
async function letGo(ctx: AppContext, ref: KeyRef, e: unknown): Promise<unknown> {
  // Another request took the key over while this one ran past its hold: that one answers.
  if (e instanceof KeyLostError) return inProgress();
  await ctx.store.dropKey(ref).catch((err: unknown) => ctx.log.warn({ err }, 'could not let go of an idempotency key; it frees itself when its hold ends'));
  return e;
}
