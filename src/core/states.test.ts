import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IllegalTransitionError, STATES, TRANSITIONS, assertTransition, canTransition, isTerminal } from './states.js';

test('the happy paths are allowed', () => {
  const text = ['queued', 'generating', 'succeeded', 'expired'] as const;
  const images = ['queued', 'fetching', 'generating', 'generated', 'upsampling', 'succeeded'] as const;
  for (const path of [text, images]) {
    for (let i = 1; i < path.length; i++) assert.ok(canTransition(path[i - 1]!, path[i]!), `${path[i - 1]} -> ${path[i]}`);
  }
});

test('every non-terminal state can fail, terminal states can only expire', () => {
  for (const s of STATES) {
    if (isTerminal(s)) {
      assert.deepEqual(TRANSITIONS[s].filter((t) => t !== 'expired'), [], s);
      assert.equal(canTransition(s, s), false, `${s} stays put`);
    } else {
      assert.ok(canTransition(s, 'failed'), `${s} -> failed`);
      assert.ok(canTransition(s, s), `${s} may stay (retry, poll)`);
    }
  }
});

test('illegal transitions are rejected', () => {
  const illegal: [string, string][] = [
    ['succeeded', 'generating'],
    ['failed', 'succeeded'],
    ['expired', 'succeeded'],
    ['queued', 'succeeded'],
    ['generated', 'generating'],
    ['upsampling', 'generated'],
    ['fetching', 'queued'],
  ];
  for (const [from, to] of illegal) {
    assert.throws(() => assertTransition(from as never, to as never), IllegalTransitionError, `${from} -> ${to}`);
  }
});

test('the table names only known states', () => {
  for (const [from, tos] of Object.entries(TRANSITIONS)) {
    assert.ok(STATES.includes(from as never));
    for (const to of tos) assert.ok(STATES.includes(to), `${from} -> ${to}`);
  }
});
