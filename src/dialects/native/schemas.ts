import Type, { type Static } from 'typebox';
import { STATES } from '../../core/states.js';
import { ENDPOINT_EVENTS } from '../../engine/endpoints.js';
import type { NativeTask, Problem } from './mapper.js';

/**
 * The answers of Reelay's own API as JSON Schema, for the API document (`http/openapi.ts`). The
 * types below are checked against the mapper's at compile time, and `test/openapi.test.ts`
 * checks real answers against the schemas, so neither drifts from what is sent.
 */
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Time = Type.String({ format: 'date-time' });
const Url = Type.String({ format: 'uri' });

export const TaskSchema = Type.Object(
  {
    id: Type.String({ description: 'The id the door that made the task gave it (`task_…` here, `video_…`, a kie id…).' }),
    object: Type.Literal('task'),
    dialect: Type.String({ description: 'The door the task was created through: kie, kkiai, openai, gemini or reelay.' }),
    model: Type.String(),
    state: Type.Enum([...STATES], { description: 'The state machine\'s state.' }),
    progress: Type.Integer({ minimum: 0, maximum: 100 }),
    prompt: Type.String(),
    images: Type.Integer({ minimum: 0, description: 'How many input images it has.' }),
    seconds: Type.Number(),
    resolution: Type.String(),
    aspect_ratio: Type.String(),
    provider: Type.String({ description: 'What makes (or made) the video: `local`, or an upstream of the routing file.' }),
    fallback: Type.Boolean({ description: 'The video came from a route other than the first (a failover).' }),
    attempts: Type.Integer({ minimum: 0 }),
    retries: Type.Integer({ minimum: 0 }),
    error: Nullable(Type.Object({ kind: Nullable(Type.String()), stage: Nullable(Type.String()), message: Type.String() })),
    last_error: Nullable(Type.String()),
    cancel_outcome: Nullable(Type.Enum(['pending', 'not_submitted', 'upstream_canceled', 'upstream_uncancelable', 'upstream_finished', 'upstream_cancel_failed'])),
    credits_reserved: Nullable(Type.Number()),
    outputs: Type.Object({ video: Nullable(Url), video_720p: Nullable(Url), video_1080p: Nullable(Url), video_4k: Nullable(Url) }),
    created_at: Time,
    updated_at: Time,
    completed_at: Nullable(Time),
  },
  { additionalProperties: false },
);

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: '`urn:reelay:error:<code>`' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    param: Type.Optional(Type.String({ description: 'The request field at fault.' })),
    task: Type.Optional(TaskSchema),
  },
  { additionalProperties: false },
);

export const TaskListSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(TaskSchema),
  has_more: Type.Boolean(),
  next_cursor: Nullable(Type.String({ description: 'Pass as `after` for the next page.' })),
});

export const EventSchema = Type.Object({
  at: Time,
  kind: Type.String({ description: '`created`, `attempt`, `transition`, `upstream`, `ledger`, `delivery`…' }),
  actor: Type.String(),
  from: Nullable(Type.String()),
  to: Nullable(Type.String()),
  detail: Nullable(Type.Object({}, { additionalProperties: true })),
});
export const EventListSchema = Type.Object({ object: Type.Literal('list'), data: Type.Array(EventSchema) });

export const DeliverySchema = Type.Object({
  id: Type.Integer(),
  webhook_id: Type.String(),
  url: Type.String(),
  status: Type.Enum(['pending', 'delivered', 'failed']),
  attempts: Type.Integer({ minimum: 0 }),
  last_status: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  created_at: Nullable(Time),
  next_attempt_at: Nullable(Time),
  delivered_at: Nullable(Time),
});
export const DeliveryListSchema = Type.Object({ object: Type.Literal('list'), data: Type.Array(DeliverySchema) });

export const BalanceSchema = Type.Object({
  object: Type.Literal('balance'),
  metered: Type.Boolean({ description: 'False for a key without a credits account: its tasks cost nothing.' }),
  credits: Nullable(Type.Number()),
  updated_at: Nullable(Time),
});

export const LedgerEntrySchema = Type.Object({
  id: Type.Integer(),
  object: Type.Literal('ledger_entry'),
  kind: Type.Enum(['topup', 'reserve', 'settle', 'refund']),
  item: Nullable(Type.String()),
  amount: Type.Number(),
  charged: Nullable(Type.Number()),
  task_id: Nullable(Type.String()),
  note: Nullable(Type.String()),
  at: Time,
});
export const LedgerSchema = Type.Object({ object: Type.Literal('list'), data: Type.Array(LedgerEntrySchema), has_more: Type.Boolean(), next_before: Nullable(Type.Integer()) });

export const EndpointSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('webhook_endpoint'),
  url: Type.String(),
  events: Type.Array(Type.Enum([...ENDPOINT_EVENTS])),
  status: Type.Enum(['enabled', 'disabled']),
  created_at: Time,
  disabled_at: Nullable(Time),
  disabled_reason: Nullable(Type.String()),
});
export const EndpointListSchema = Type.Object({ object: Type.Literal('list'), data: Type.Array(EndpointSchema) });
export const EndpointDeletedSchema = Type.Object({ id: Type.String(), object: Type.Literal('webhook_endpoint.deleted'), deleted: Type.Literal(true) });

// The schema and the mapper's type say the same, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const taskSame: Same<Static<typeof TaskSchema>, NativeTask> = true;
const problemFits: Static<typeof ProblemSchema> extends Omit<Problem, 'code' | 'task'> ? true : false = true;
void taskSame;
void problemFits;
