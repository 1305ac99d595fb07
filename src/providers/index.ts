import { ConfigError } from '../config-error.js';
import { callbackUrl } from '../http/upstream-callbacks.js';
import type { UrlGuard } from '../net/guard.js';
import type { RoutingConfig } from '../routing/config.js';
import { ComfyUIProvider } from './comfyui/index.js';
import { FalProvider } from './fal/index.js';
import { GeminiProvider } from './google/gemini.js';
import { VertexProvider } from './google/vertex.js';
import { OpenAIVideosProvider } from './openai/index.js';
import { ReplicateProvider } from './replicate/index.js';
import { KieProvider } from './kie/index.js';
import { KkiaiProvider } from './kkiai/index.js';
import type { LocalProvider } from './local/index.js';
import type { Provider } from './port.js';

export interface ProviderDeps {
  local: LocalProvider;
  guard: UrlGuard;
  /** The largest result file downloaded from an upstream. */
  maxResultBytes: number;
  /** Reelay's public base URL (for upstream callbacks). */
  publicUrl?: string;
}

/** One provider instance per configured label. */
export function createProviders(routing: RoutingConfig, deps: ProviderDeps): Map<string, Provider> {
  const out = new Map<string, Provider>();
  for (const [label, config] of routing.providers) {
    switch (config.type) {
      case 'local':
        if (label !== 'local') throw new ConfigError(`provider ${label}: the local renderer is the provider labelled "local"; it cannot be configured twice`);
        out.set(label, deps.local);
        break;
      case 'gemini':
        out.set(label, new GeminiProvider(config, deps.guard, deps.maxResultBytes));
        break;
      case 'vertex':
        out.set(label, new VertexProvider(config, deps.guard, deps.maxResultBytes));
        break;
      case 'openai':
        out.set(label, new OpenAIVideosProvider(config, deps.guard, deps.maxResultBytes));
        break;
      case 'replicate':
        out.set(label, new ReplicateProvider(config, deps.guard, deps.maxResultBytes));
        break;
      case 'fal':
        out.set(label, new FalProvider(config, deps.guard, deps.maxResultBytes));
        break;
      case 'comfyui':
        out.set(label, new ComfyUIProvider(config, deps.guard, deps.maxResultBytes));
        break;
      case 'kie':
        out.set(label, new KieProvider(config, deps.guard, deps.maxResultBytes, deps.publicUrl ? callbackUrl(deps.publicUrl, config) : undefined));
        break;
      case 'kkiai':
        out.set(label, new KkiaiProvider(config, deps.guard, deps.maxResultBytes));
        break;
    }
  }
  return out;
}
