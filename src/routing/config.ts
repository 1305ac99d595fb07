import { readFileSync } from 'node:fs';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { ConfigError } from '../config-error.js';
import { type Price, REFUND_ALL, type RefundPolicy } from '../core/credits.js';
import { type ProviderConfig, ProviderSchema, providerConfig } from '../providers/config.js';

const RouteSchema = Type.Object(
  {
    provider: Type.String({ minLength: 1 }),
    model: Type.Optional(Type.String({ minLength: 1, description: 'the upstream model id (default: the public model name)' })),
    priority: Type.Optional(Type.Integer({ description: 'lower first; routes of equal priority share tasks by weight' })),
    weight: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

const credits = (description?: string) => Type.Number({ minimum: 0, ...(description ? { description } : {}) });
const PriceSchema = Type.Object(
  {
    perSecond: credits('credits per second of video asked'),
    perSecondAt: Type.Optional(
      Type.Object({ '720p': Type.Optional(credits()), '1080p': Type.Optional(credits()), '4k': Type.Optional(credits()) }, { additionalProperties: false, description: 'per-second prices by the resolution asked' }),
    ),
    extendPerSecond: Type.Optional(credits('credits per second an extension adds (default perSecond)')),
    hd: Type.Optional(credits('credits for a 1080p rendition asked for after success')),
    uhd: Type.Optional(credits('credits for a 4k rendition asked for after success')),
  },
  { additionalProperties: false },
);

const ModelSchema = Type.Object(
  {
    match: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
    routes: Type.Array(RouteSchema, { minItems: 1 }),
    price: Type.Optional(PriceSchema),
  },
  { additionalProperties: false },
);

const RefundSchema = Type.Object(
  {
    failed: Type.Optional(Type.Boolean({ description: 'refund a task the provider or Reelay failed' })),
    timeout: Type.Optional(Type.Boolean({ description: 'refund a task that passed its deadline' })),
    safety: Type.Optional(Type.Boolean({ description: 'refund a safety rejection' })),
    canceled: Type.Optional(Type.Boolean({ description: 'refund a cancel that stopped the work' })),
  },
  { additionalProperties: false },
);

export const RoutingFileSchema = Type.Object(
  {
    providers: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]*$' }), ProviderSchema)),
    models: Type.Optional(Type.Array(ModelSchema)),
    failover: Type.Optional(
      Type.Object(
        { onSafety: Type.Optional(Type.Boolean({ description: 'resubmit safety rejections to the next route' })) },
        { additionalProperties: false },
      ),
    ),
    credits: Type.Optional(Type.Object({ refund: Type.Optional(RefundSchema) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type RoutingFile = Static<typeof RoutingFileSchema>;

export interface RouteConfig {
  provider: string;
  /** The upstream model id; undefined means the public model name. */
  model?: string;
  priority: number;
  weight: number;
}

export interface ModelRule {
  match: string[];
  routes: RouteConfig[];
  /** What a task of the model costs a metered key (see `core/credits.ts`); free without one. */
  price?: Price;
}

export interface RoutingConfig {
  providers: Map<string, ProviderConfig>;
  models: ModelRule[];
  failoverOnSafety: boolean;
  /** Which ends give a metered task's credits back. */
  refund: RefundPolicy;
}

/** The routing used when no file is given: every model renders locally. */
export function defaultRouting(): RoutingConfig {
  return { providers: new Map([['local', providerConfig('local', { type: 'local' }, {})]]), models: [], failoverOnSafety: false, refund: REFUND_ALL };
}

/** Reads and validates a routing file (`REELAY_CONFIG`). Every problem is a `ConfigError` naming the field. */
export function loadRoutingFile(path: string, env: Record<string, string | undefined>): RoutingConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`REELAY_CONFIG ${path}: ${(e as Error).message}`);
  }
  return parseRouting(raw, env, path);
}

export function parseRouting(raw: unknown, env: Record<string, string | undefined>, source = 'config'): RoutingConfig {
  if (!Value.Check(RoutingFileSchema, raw)) {
    const problems = Value.Errors(RoutingFileSchema, raw)
      .filter((e) => e.keyword !== 'boolean')
      .slice(0, 5)
      .map((e) => `${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? `: ${(e.params as { additionalProperties?: string[] }).additionalProperties?.join(', ')}` : ''}`);
    throw new ConfigError(`${source}: ${problems.join('; ')}`);
  }
  const file = raw as RoutingFile;
  const providers = new Map<string, ProviderConfig>();
  providers.set('local', providerConfig('local', { type: 'local' }, env));
  for (const [label, p] of Object.entries(file.providers ?? {})) {
    providers.set(label, providerConfig(label, p, env, source));
  }
  const models: ModelRule[] = (file.models ?? []).map((m, i) => ({
    match: typeof m.match === 'string' ? [m.match] : m.match,
    routes: m.routes.map((r, j) => {
      if (!providers.has(r.provider)) {
        throw new ConfigError(`${source}: /models/${i}/routes/${j}/provider: no provider "${r.provider}" (known: ${[...providers.keys()].join(', ')})`);
      }
      return { provider: r.provider, ...(r.model ? { model: r.model } : {}), priority: r.priority ?? j, weight: r.weight ?? 1 };
    }),
    ...(m.price ? { price: m.price } : {}),
  }));
  return { providers, models, failoverOnSafety: file.failover?.onSafety ?? false, refund: { ...REFUND_ALL, ...file.credits?.refund } };
}
