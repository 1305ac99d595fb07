import { ConfigError } from '../config-error.js';
import type { ProviderConfig, ProviderType } from './config.js';
import { ComfyUIProvider } from './comfyui/index.js';
import { FalProvider } from './fal/index.js';
import { GeminiProvider } from './google/gemini.js';
import { VertexProvider } from './google/vertex.js';
import { KieProvider } from './kie/index.js';
import { KkiaiProvider } from './kkiai/index.js';
import { OpenAIVideosProvider } from './openai/index.js';
import { ReplicateProvider } from './replicate/index.js';
import type { LocalProvider } from './local/index.js';
import type { Provider } from './port.js';
import type { RemoteDeps } from './remote.js';

export interface ProviderDeps extends RemoteDeps {
  local: LocalProvider;
}

/** The remote providers by type; each is built from its configuration and the shared deps. */
const REMOTE: Record<Exclude<ProviderType, 'local'>, new (config: ProviderConfig, deps: RemoteDeps) => Provider> = {
  kie: KieProvider,
  kkiai: KkiaiProvider,
  gemini: GeminiProvider,
  vertex: VertexProvider,
  openai: OpenAIVideosProvider,
  fal: FalProvider,
  replicate: ReplicateProvider,
  comfyui: ComfyUIProvider,
};

/** One provider instance per configured label. */
export function createProviders(configs: Map<string, ProviderConfig>, deps: ProviderDeps): Map<string, Provider> {
  const out = new Map<string, Provider>();
  for (const [label, config] of configs) {
    if (config.type !== 'local') {
      out.set(label, new REMOTE[config.type](config, deps));
    } else if (label === 'local') {
      out.set(label, deps.local);
    } else {
      throw new ConfigError(`provider ${label}: the local renderer is the provider labelled "local"; it cannot be configured twice`);
    }
  }
  return out;
}
