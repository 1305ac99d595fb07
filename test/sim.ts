import type { FastifyInstance } from 'fastify';
import { after } from 'node:test';
import { UrlGuard } from '../src/net/guard.js';
import type { RemoteDeps } from '../src/providers/remote.js';
import type { ProviderConfig, ProviderType } from '../src/providers/config.js';
import { parseRouting } from '../src/routing/config.js';
import type { SimJobs } from '../src/sim/jobs.js';
import { type SimOptions, buildSim } from '../src/sim/server.js';
import { binaries } from './media.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SIM_KEY = 'sk-sim-test';

/** An upstream simulator on a free loopback port, closed after the test file. */
export async function startTestSim(over: Partial<SimOptions> = {}): Promise<{ url: string; app: FastifyInstance; jobs: SimJobs }> {
  const { app, jobs } = await buildSim({
    durationMs: 300,
    faults: {},
    retryAfterSeconds: 2,
    hangMs: 3000,
    videoSeconds: 1,
    // Shared by every test simulator (and kept between runs): the samples are made once.
    dir: join(tmpdir(), 'reelay-test-sim-samples'),
    binaries,
    keys: [SIM_KEY],
    ...over,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  after(() => app.close());
  const address = app.server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, app, jobs };
}

/** A provider configuration pointing at the simulator. */
export function simProvider(type: ProviderType, url: string, over: Record<string, unknown> = {}, key = SIM_KEY): ProviderConfig {
  return parseRouting({ providers: { sim: { type, baseUrl: url, apiKeyEnv: 'SIM_KEY', timeoutSeconds: 1, ...over } } }, { SIM_KEY: key }).providers.get('sim')!;
}

/** What remote providers are built with in tests: nothing allow-listed (result files on the provider's own host need no exemption). */
export const simDeps: RemoteDeps = { guard: new UrlGuard([]), maxResultBytes: 1 << 30 };
