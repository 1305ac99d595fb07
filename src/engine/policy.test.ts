import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeTask } from '../../test/fixtures.js';
import type { Attempt, Task } from '../core/task.js';
import { PermanentError, RateLimitedError, SafetyRejectedError, TransientError } from '../providers/port.js';
import { parseRouting } from '../routing/config.js';
import type { Route } from '../routing/router.js';
import { type PolicyContext, abandonedJob, hold, nextPollAt, onProviderError, retryOrFail, stalled, waitForStorage } from './policy.js';

// Pure decisions: no store, no ffmpeg, no clock. Times are plain numbers.
const routing = parseRouting({
  providers: {
    a: { type: 'kie', apiKeyEnv: 'K', typicalSeconds: 0, pollMaxSeconds: 30, stallSeconds: 10, rateLimitBudgetSeconds: 5 },
    b: { type: 'kie', apiKeyEnv: 'K', typicalSeconds: 0 },
  },
}, { K: 'k' });
const a = routing.providers.get('a')!;
const b = routing.providers.get('b')!;
const plan: Route[] = [
  { index: 0, provider: a, model: 'm' },
  { index: 1, provider: b, model: 'm' },
];

function ctx(over: Partial<PolicyContext> = {}, routes = plan): PolicyContext {
  return {
    notify: (t) => [{ taskId: t.id, url: 'https://cb.example', body: t.state, createdAt: 0 }],
    next: (from) => {
      for (let step = 0; step < routes.length; step++) {
        const i = (from + step) % routes.length;
        return { route: routes[i]!, wrapped: from + step >= routes.length };
      }
      return undefined;
    },
    failoverOnSafety: false,
    endedAt: 1_050,
    ...over,
  };
}

const running = (over: Partial<Task> = {}) => makeTask({ state: 'generating', provider: 'a', upstreamId: 'j1', submittedAt: 0, errorSleepMs: 700, maxRetries: 3, ...over });

describe('stall time', () => {
  test('a job is stalled only once it has run past stallSeconds', () => {
    assert.equal(stalled(a, { submittedAt: 0 }, 10_000), false);
    assert.equal(stalled(a, { submittedAt: 0 }, 10_001), true);
  });

  test('the poll schedule never jumps over the stall time: the deciding poll comes just after it', () => {
    // Polled at 8.5 s, the next poll would come at 8.5 + 1.7 = 10.2 s: it comes at 10.001 s instead.
    assert.equal(nextPollAt(a, { submittedAt: 0 }, 8_500, 1000, undefined, 0.5), 10_001);
    // Well before the deadline, the usual delay (a fifth of the age).
    assert.equal(nextPollAt(a, { submittedAt: 0 }, 2_000, 100, undefined, 0.5), 2_400);
    // Past the deadline (a job polled once more, still reachable): the usual delay.
    assert.equal(nextPollAt(a, { submittedAt: 0 }, 20_000, 1000, undefined, 0.5), 24_000);
    // A hint (Retry-After) is capped by the deadline too.
    assert.equal(nextPollAt(a, { submittedAt: 0 }, 9_000, 1000, 5_000), 10_001);
  });
});

describe('what a provider error does', () => {
  test('a retryable error moves to the next route at once, counted as a retry', () => {
    const d = onProviderError(ctx(), running(), 1_000, new TransientError('502'), { step: 'poll', route: plan[0]!, upstreamId: 'j1', extra: { upstreamId: null } });
    assert.deepEqual(d.moved, { from: 'a', to: 'b' });
    assert.deepEqual([d.patch.routeIndex, d.patch.nextRunAt, d.patch.retryCount, d.patch.upstreamId], [1, 1_000, 1, null]);
    assert.deepEqual([d.attempt?.outcome, d.attempt?.provider, d.attempt?.upstreamId, d.attempt?.startedAt, d.attempt?.endedAt], ['retry', 'a', 'j1', 1_000, 1_050]);
  });

  test('a stalled job is recorded as abandoned; with one route, the same route again after error_sleep', () => {
    const d = onProviderError(ctx({}, [plan[0]!]), running(), 1_000, new TransientError('stalled'), { step: 'poll', route: plan[0]!, upstreamId: 'j1', extra: { upstreamId: null }, outcome: 'abandoned' });
    assert.equal(d.moved, undefined);
    assert.deepEqual([d.patch.routeIndex, d.patch.nextRunAt, d.attempt?.outcome], [0, 1_700, 'abandoned']);
  });

  test('a full round over the routes waits error_sleep before the first route again', () => {
    const d = onProviderError(ctx(), running({ provider: 'b', routeIndex: 1 }), 1_000, new TransientError('x'), { step: 'submit', route: plan[1]!, upstreamId: null, extra: {} });
    assert.deepEqual([d.patch.routeIndex, d.patch.nextRunAt], [0, 1_700]);
  });

  test('a 429 within the budget waits on the same route; past it, moves on', () => {
    const within = onProviderError(ctx(), running({ upstreamId: null }), 1_000, new RateLimitedError('slow down', 3_000), { step: 'submit', route: plan[0]!, upstreamId: null, extra: {} });
    assert.deepEqual([within.patch.routeIndex, within.patch.nextRunAt, within.moved], [0, 4_000, undefined]);
    const past = onProviderError(ctx(), running({ upstreamId: null }), 1_000, new RateLimitedError('slow down', 60_000), { step: 'submit', route: plan[0]!, upstreamId: null, extra: {} });
    assert.deepEqual([past.patch.routeIndex, past.patch.nextRunAt], [1, 1_000]);
  });

  test('a safety rejection fails the task (content policy) with its callback, unless failover on safety is set', () => {
    const d = onProviderError(ctx(), running(), 1_000, new SafetyRejectedError('unsafe'), { step: 'poll', route: plan[0]!, upstreamId: 'j1', extra: { upstreamId: null } });
    assert.deepEqual([d.patch.state, d.patch.lastErrorKind, d.patch.failureStage, d.patch.completedAt], ['failed', 'content_policy', 'generation', 1_000]);
    assert.deepEqual(d.deliveries?.map((x) => x.body), ['failed']);
    const moved = onProviderError(ctx({ failoverOnSafety: true }), running(), 1_000, new SafetyRejectedError('unsafe'), { step: 'poll', route: plan[0]!, upstreamId: 'j1', extra: {} });
    assert.deepEqual([moved.patch.state, moved.patch.routeIndex, moved.patch.lastErrorKind], [undefined, 1, 'content_policy']);
  });

  test('a permanent error fails at once; retries used up fail too', () => {
    const p = onProviderError(ctx(), running(), 1_000, new PermanentError('bad prompt'), { step: 'submit', route: plan[0]!, upstreamId: null, extra: {} });
    assert.deepEqual([p.patch.state, p.patch.lastErrorKind, p.attempt?.outcome], ['failed', 'upstream', 'failed']);
    const spent = retryOrFail(ctx(), running({ retryCount: 3 }), 1_000, new Error('again'), { step: 'fetch' });
    assert.deepEqual([spent.patch.state, spent.patch.failureStage, spent.patch.lastError], ['failed', 'input', 'Failed to fetch the image: again']);
  });
});

describe('taking back an abandoned job', () => {
  const at = (provider: string, upstreamId: string | null, outcome: Attempt['outcome']): Attempt => ({ taskId: 't', n: 0, step: 'poll', provider, upstreamId, startedAt: 0, endedAt: 0, outcome, error: null });

  test('the newest job given up on this provider, unless it was taken back or a new job came after', () => {
    assert.equal(abandonedJob([at('a', 'j1', 'submitted'), at('a', 'j1', 'abandoned'), at('b', 'k1', 'submitted'), at('b', 'k1', 'retry')], 'a'), 'j1');
    assert.equal(abandonedJob([at('a', 'j1', 'submitted'), at('a', 'j1', 'abandoned')], 'b'), undefined, 'another provider');
    assert.equal(abandonedJob([at('a', 'j1', 'abandoned'), at('a', 'j1', 'resumed')], 'a'), undefined, 'already taken back');
    assert.equal(abandonedJob([at('a', 'j1', 'abandoned'), at('a', 'j2', 'submitted')], 'a'), undefined, 'a new job was submitted after it');
    assert.equal(abandonedJob([at('a', 'j1', 'abandoned'), at('a', 'j1', 'resumed'), at('a', 'j1', 'abandoned')], 'a'), 'j1', 'taken back and given up again');
    assert.equal(abandonedJob([at('a', 'j1', 'retry')], 'a'), undefined, 'a failed job is not waited for');
  });
});

describe('holding a task between steps', () => {
  const base = { state: 'generating' as const, now: 1_000, leaseMs: 30_000, holdMs: 120_000, mayHold: true };

  test('a lease that outlasts the next start by half a lease is kept as it is', () => {
    assert.deepEqual(hold({ ...base, due: 2_000, leaseUntil: 40_000 }), { keep: true, leaseUntil: 40_000, keepLease: true });
  });

  test('else it is moved a lease and a half past what is needed', () => {
    assert.deepEqual(hold({ ...base, due: 60_000, leaseUntil: 40_000 }), { keep: true, leaseUntil: 60_000 + 15_000 + 45_000, keepLeaseUntil: 120_000 });
  });

  test('not held: due too late, not due, terminal, or the engine may not hold more', () => {
    assert.deepEqual(hold({ ...base, due: 200_000, leaseUntil: 40_000 }), { keep: false });
    assert.deepEqual(hold({ ...base, due: null, leaseUntil: 40_000 }), { keep: false });
    assert.deepEqual(hold({ ...base, state: 'succeeded', due: 2_000, leaseUntil: 40_000 }), { keep: false });
    assert.deepEqual(hold({ ...base, mayHold: false, due: 2_000, leaseUntil: 40_000 }), { keep: false });
  });
});

describe('waiting for the result storage', () => {
  test('the step runs again after error_sleep, counting no retry, even past the last one; lastError says why', () => {
    const task = running({ retryCount: 3, maxRetries: 3 });
    const decided = waitForStorage(task, 1_000, new Error('s3 putFile s3://b/k: connect ECONNREFUSED'), { resultUrl: null });
    assert.deepEqual(decided, {
      taskId: task.id,
      patch: { resultUrl: null, lastError: 'result storage unavailable: s3 putFile s3://b/k: connect ECONNREFUSED', lastErrorKind: 'internal', nextRunAt: 1_700, updatedAt: 1_000 },
    });
  });
});
