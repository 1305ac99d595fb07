import { readFileSync } from 'node:fs';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { ConfigError } from '../config-error.js';

/** The kinds of provider Reelay can route to; each is a folder under `src/providers/`. */
export const PROVIDER_TYPES = ['local', 'kie', 'kkiai', 'gemini', 'vertex', 'openai', 'fal', 'replicate', 'comfyui'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

const Seconds = (description: string, minimum = 0) => Type.Optional(Type.Number({ minimum, description }));

const ProviderSchema = Type.Object(
  {
    type: Type.Enum([...PROVIDER_TYPES]),
    baseUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'the upstream API base URL' })),
    apiKeyEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'the environment variable that holds the key' })),
    enabled: Type.Optional(Type.Boolean({ description: 'false: no new submissions; tasks on it fail over' })),
    maxInFlight: Type.Optional(Type.Integer({ minimum: 1, description: 'upstream jobs running at once' })),
    ratePerSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'new submissions per second' })),
    typicalSeconds: Seconds('first poll after this long', 0),
    pollMaxSeconds: Seconds('the longest wait between polls', 0.1),
    stallSeconds: Seconds('an accepted job without a result after this is abandoned and the task fails over', 1),
    rateLimitBudgetSeconds: Seconds('a 429 asking to wait longer than this fails over at once', 0),
    timeoutSeconds: Seconds('timeout of one upstream HTTP request', 0.1),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'provider-specific settings' })),
  },
  { additionalProperties: false },
);

const RouteSchema = Type.Object(
  {
    provider: Type.String({ minLength: 1 }),
    model: Type.Optional(Type.String({ minLength: 1, description: 'the upstream model id (default: the public model name)' })),
    priority: Type.Optional(Type.Integer({ description: 'lower first; routes of equal priority share tasks by weight' })),
    weight: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

const ModelSchema = Type.Object(
  {
    match: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
    routes: Type.Array(RouteSchema, { minItems: 1 }),
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
  },
  { additionalProperties: false },
);
export type RoutingFile = Static<typeof RoutingFileSchema>;

/** One provider as configured, with its defaults filled in and its key read from the environment. */
export interface ProviderConfig {
  label: string;
  type: ProviderType;
  baseUrl?: string;
  /** The secret itself. Never logged, never put in a response or a task record. */
  apiKey?: string;
  enabled: boolean;
  maxInFlight: number;
  /** New submissions per second; undefined: no limit. */
  ratePerSecond?: number;
  typicalMs: number;
  pollMaxMs: number;
  stallMs: number;
  rateLimitBudgetMs: number;
  timeoutMs: number;
  options: Record<string, unknown>;
}

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
}

export interface RoutingConfig {
  providers: Map<string, ProviderConfig>;
  models: ModelRule[];
  failoverOnSafety: boolean;
}

/** Defaults per provider type: a typical generation time and how long before a job counts as stalled. */
const TYPE_DEFAULTS: Record<ProviderType, { typicalMs: number; stallMs: number }> = {
  local: { typicalMs: 0, stallMs: 20 * 60_000 },
  kie: { typicalMs: 60_000, stallMs: 15 * 60_000 },
  kkiai: { typicalMs: 60_000, stallMs: 15 * 60_000 },
  gemini: { typicalMs: 50_000, stallMs: 12 * 60_000 },
  vertex: { typicalMs: 50_000, stallMs: 12 * 60_000 },
  openai: { typicalMs: 60_000, stallMs: 15 * 60_000 },
  fal: { typicalMs: 50_000, stallMs: 15 * 60_000 },
  replicate: { typicalMs: 50_000, stallMs: 15 * 60_000 },
  comfyui: { typicalMs: 30_000, stallMs: 30 * 60_000 },
};

/** Types that need a `baseUrl` because they have no public default. */
const NEEDS_BASE_URL: ReadonlySet<ProviderType> = new Set(['kkiai', 'comfyui']);
/** Types that call an API with a key. */
const NEEDS_KEY: ReadonlySet<ProviderType> = new Set(['kie', 'kkiai', 'gemini', 'openai', 'fal', 'replicate']);

/** The routing used when no file is given: every model renders locally. */
export function defaultRouting(): RoutingConfig {
  return { providers: new Map([['local', providerConfig('local', { type: 'local' }, {})]]), models: [], failoverOnSafety: false };
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
  }));
  return { providers, models, failoverOnSafety: file.failover?.onSafety ?? false };
}

function providerConfig(label: string, p: Static<typeof ProviderSchema>, env: Record<string, string | undefined>, source = 'config'): ProviderConfig {
  const at = `${source}: /providers/${label}`;
  if (NEEDS_BASE_URL.has(p.type) && !p.baseUrl) throw new ConfigError(`${at}: a ${p.type} provider needs baseUrl`);
  let apiKey: string | undefined;
  if (p.apiKeyEnv) {
    apiKey = env[p.apiKeyEnv]?.trim();
    if (!apiKey) throw new ConfigError(`${at}: the environment variable ${p.apiKeyEnv} (apiKeyEnv) is not set`);
  } else if (NEEDS_KEY.has(p.type)) {
    throw new ConfigError(`${at}: a ${p.type} provider needs apiKeyEnv, the environment variable holding its key`);
  }
  const d = TYPE_DEFAULTS[p.type];
  const ms = (s: number | undefined, def: number) => (s === undefined ? def : Math.round(s * 1000));
  return {
    label,
    type: p.type,
    ...(p.baseUrl ? { baseUrl: p.baseUrl.replace(/\/+$/, '') } : {}),
    ...(apiKey ? { apiKey } : {}),
    enabled: p.enabled ?? true,
    maxInFlight: p.maxInFlight ?? 1000,
    ...(p.ratePerSecond !== undefined ? { ratePerSecond: p.ratePerSecond } : {}),
    typicalMs: ms(p.typicalSeconds, d.typicalMs),
    pollMaxMs: ms(p.pollMaxSeconds, 30_000),
    stallMs: ms(p.stallSeconds, d.stallMs),
    rateLimitBudgetMs: ms(p.rateLimitBudgetSeconds, 30_000),
    timeoutMs: ms(p.timeoutSeconds, 30_000),
    options: p.options ?? {},
  };
}
