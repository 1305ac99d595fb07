import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRouting } from '../routing/config.js';
import { pollDelay } from './policy.js';

const config = parseRouting({ providers: { p: { type: 'kie', apiKeyEnv: 'K', typicalSeconds: 60, pollMaxSeconds: 30 } } }, { K: 'k' }).providers.get('p')!;

test('poll delays: the typical time first, then a fifth of the age up to the ceiling, hints honoured', () => {
  assert.equal(pollDelay(config, 10_000, 1000, undefined, 0.5), 50_000, 'waits out the typical duration');
  assert.equal(pollDelay(config, 60_000, 1000, undefined, 0.5), 12_000, 'a fifth of 60 s');
  assert.equal(pollDelay(config, 100_000, 1000, undefined, 0.5), 20_000);
  assert.equal(pollDelay(config, 600_000, 1000, undefined, 0.5), 30_000, 'capped at pollMaxSeconds');
  assert.equal(pollDelay(config, 100_000, 1000, 5000), 5000, 'Retry-After wins');
  assert.equal(pollDelay(config, 100_000, 1000, 10), 1000, 'but not below the floor');
  assert.equal(pollDelay(config, 100_000, 1000, 10 * 60_000), 30_000, 'nor above the ceiling');
});

test('poll delays spread by ±10 % so jobs submitted together are not polled together', () => {
  assert.equal(pollDelay(config, 60_000, 1000, undefined, 0), 10_800);
  assert.ok(Math.abs(pollDelay(config, 60_000, 1000, undefined, 0.999_999) - 13_200) < 1);
  // A five-minute job is polled about a dozen times, not three hundred.
  let age = 0;
  let polls = 0;
  while (age < 300_000) {
    age += pollDelay(config, age, 1000, undefined, 0.5);
    polls++;
  }
  assert.ok(polls >= 8 && polls <= 14, `${polls} polls`);
});
