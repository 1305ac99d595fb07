import type { Static } from 'typebox';
import Type from 'typebox';
import { ConfigError } from '../config-error.js';

// What a provider is configured with: its type, its settings' schema and defaults, and the
// ProviderConfig built from a routing file's entry. Routing refers to providers by label; the
// providers themselves need only this.

/** The kinds of provider Reelay can route to; each is a folder under `src/providers/`. */
export const PROVIDER_TYPES = ['local', 'kie', 'kkiai', 'gemini', 'vertex', 'openai', 'fal', 'replicate', 'comfyui'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

const Seconds = (description: string, minimum = 0) => Type.Optional(Type.Number({ minimum, description }));

export const ProviderSchema = Type.Object(
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

/** One provider's settings from a routing file's entry, with defaults filled in and its key read from `env`. */
export function providerConfig(label: string, p: Static<typeof ProviderSchema>, env: Record<string, string | undefined>, source = 'config'): ProviderConfig {
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
