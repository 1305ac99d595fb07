import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../config-error.js';
import type { Provider } from '../providers/port.js';
import { defaultRouting, parseRouting } from './config.js';
import { Router } from './router.js';

const env = { KIE_KEY: 'k1', RESELLER_KEY: 'k2' };
const file = {
  providers: {
    kie: { type: 'kie', apiKeyEnv: 'KIE_KEY' },
    reseller: { type: 'kkiai', baseUrl: 'https://reseller.example/', apiKeyEnv: 'RESELLER_KEY', typicalSeconds: 40 },
  },
  models: [
    { match: ['veo3_fast', 'veo3.1-fast'], routes: [{ provider: 'kie', model: 'veo3_fast' }, { provider: 'reseller', model: 'veo3.1-fast' }, { provider: 'local' }] },
    { match: 'split-*', routes: [{ provider: 'kie', priority: 0, weight: 3 }, { provider: 'reseller', priority: 0, weight: 1 }, { provider: 'local', priority: 1 }] },
  ],
};
const stub = (name: string) => ({ name }) as unknown as Provider;
const router = (cfg = parseRouting(file, env)) => new Router(cfg, new Map([...cfg.providers.keys()].map((k) => [k, stub(k)])));

test('a valid file: defaults filled in, keys read from the environment, base URL trimmed', () => {
  const cfg = parseRouting(file, env);
  const reseller = cfg.providers.get('reseller')!;
  assert.equal(reseller.apiKey, 'k2');
  assert.equal(reseller.baseUrl, 'https://reseller.example');
  assert.equal(reseller.typicalMs, 40_000);
  assert.equal(cfg.providers.get('kie')!.typicalMs, 60_000);
  assert.ok(cfg.providers.has('local'), 'the local renderer is always there');
});

test('bad files are clear ConfigErrors naming the field', () => {
  const bad: [unknown, RegExp][] = [
    [{ providers: { x: { type: 'nope' } } }, /\/providers\/x\/type/],
    [{ providers: { x: { type: 'kie', apiKeyEnv: 'KIE_KEY', extra: 1 } } }, /additional properties: extra/],
    [{ providers: { x: { type: 'kie' } } }, /needs apiKeyEnv/],
    [{ providers: { x: { type: 'kie', apiKeyEnv: 'MISSING' } } }, /MISSING \(apiKeyEnv\) is not set/],
    [{ providers: { x: { type: 'kkiai', apiKeyEnv: 'KIE_KEY' } } }, /needs baseUrl/],
    [{ models: [{ match: 'm', routes: [{ provider: 'ghost' }] }] }, /no provider "ghost"/],
    [{ models: [{ match: 'm', routes: [] }] }, /\/models\/0\/routes/],
    [{ providers: { x: { type: 'kie', apiKeyEnv: 'KIE_KEY', stallSeconds: -1 } } }, /stallSeconds/],
  ];
  for (const [raw, message] of bad) assert.throws(() => parseRouting(raw, env), (e: Error) => e instanceof ConfigError && message.test(e.message), JSON.stringify(raw));
});

test('plans: the matching rule in order, upstream model ids, local when nothing matches', () => {
  const r = router();
  assert.deepEqual(r.plan({ id: 't1', model: 'veo3.1-fast' }).map((x) => [x.provider.label, x.model]), [['kie', 'veo3_fast'], ['reseller', 'veo3.1-fast'], ['local', 'veo3.1-fast']]);
  assert.deepEqual(r.plan({ id: 't1', model: 'veo3' }).map((x) => x.provider.label), ['local']);
  assert.deepEqual(router(defaultRouting()).plan({ id: 't', model: 'anything' }).map((x) => x.provider.label), ['local']);
});

test('equal priority shares tasks by weight, the same way for the same task every time', () => {
  const r = router();
  const first = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const plan = r.plan({ id: `task-${i}`, model: 'split-a' });
    assert.equal(plan.at(-1)!.provider.label, 'local', 'lower priority comes last');
    first.set(plan[0]!.provider.label, (first.get(plan[0]!.provider.label) ?? 0) + 1);
    assert.deepEqual(r.plan({ id: `task-${i}`, model: 'split-a' }), plan, 'deterministic');
  }
  const share = first.get('kie')! / 4000;
  assert.ok(share > 0.7 && share < 0.8, `weight 3:1 gives ~75 % first on kie, got ${share}`);
});

test('next() skips disabled providers and wraps around', () => {
  const cfg = parseRouting(file, env);
  const r = router(cfg);
  const plan = r.plan({ id: 't', model: 'veo3_fast' });
  assert.deepEqual([r.next(plan, 0)?.route.provider.label, r.next(plan, 0)?.wrapped], ['kie', false]);
  cfg.providers.get('kie')!.enabled = false;
  assert.equal(r.next(plan, 0)?.route.provider.label, 'reseller');
  assert.deepEqual([r.next(plan, 3)?.route.provider.label, r.next(plan, 3)?.wrapped], ['reseller', true]);
});

test('redact() removes every configured upstream key from a text', () => {
  const cfg = parseRouting({ providers: { kie: { type: 'kie', apiKeyEnv: 'KIE_KEY' } } }, { KIE_KEY: 'sk-upstream-very-secret' });
  const r = new Router(cfg, new Map());
  assert.equal(r.redact('401: Incorrect API key provided: sk-upstream-very-secret (twice: sk-upstream-very-secret)'), '401: Incorrect API key provided: [redacted] (twice: [redacted])');
});

test('a task that extends a video keeps only the routes whose provider can extend', () => {
  const cfg = parseRouting(file, env);
  const providers = new Map<string, Provider>([...cfg.providers.keys()].map((k) => [k, { ...stub(k), extends: k !== 'kie' } as Provider]));
  const r = new Router(cfg, providers);
  const extend = { id: 't', model: 'veo3.1-fast', spec: { video: 'task:abc' } };
  assert.deepEqual(r.plan(extend).map((x) => [x.index, x.provider.label]), [[0, 'reseller'], [1, 'local']], 'kie is left out, and the indexes follow');
  assert.deepEqual(r.plan({ ...extend, spec: {} }).map((x) => x.provider.label), ['kie', 'reseller', 'local'], 'a plain task keeps every route');
  const none = new Router(cfg, new Map([...cfg.providers.keys()].map((k) => [k, stub(k)])));
  assert.deepEqual(none.plan(extend), [], 'no provider can: no route (the create is refused)');
  assert.deepEqual(none.plan({ ...extend, model: 'unrouted' }), [], 'nor the local fallback when it cannot');
});

test('a provider that extends only its own videos is in the plan only for a video it made', () => {
  const cfg = parseRouting(file, env);
  const providers = new Map<string, Provider>([...cfg.providers.keys()].map((k) => [k, { ...stub(k), extends: k === 'kie' ? 'own' : k === 'local' } as Provider]));
  const r = new Router(cfg, providers);
  const labels = (job?: { provider: string; upstreamId: string }) =>
    r.plan({ id: 't', model: 'veo3.1-fast', spec: { video: 'task:abc', ...(job ? { videoJob: job } : {}) } }).map((x) => x.provider.label);
  assert.deepEqual(labels({ provider: 'kie', upstreamId: 'k1' }), ['kie', 'local'], 'kie made it: kie can extend it');
  assert.deepEqual(labels({ provider: 'reseller', upstreamId: 'r1' }), ['local']);
  assert.deepEqual(labels(), ['local'], 'an uploaded video');
});
