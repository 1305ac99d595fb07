import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config.js';

test('REELAY_DASHBOARD is on by default, off with off, and anything else stops the start; REELAY_OPERATOR_KEYS is a list of key ids', () => {
  assert.equal(loadConfig({}).dashboard, true);
  assert.equal(loadConfig({ REELAY_DASHBOARD: 'OFF ' }).dashboard, false);
  assert.equal(loadConfig({ REELAY_DASHBOARD: 'on' }).dashboard, true);
  assert.throws(() => loadConfig({ REELAY_DASHBOARD: 'no' }), /REELAY_DASHBOARD must be on or off/);
  assert.deepEqual(loadConfig({}).operatorKeys, []);
  assert.deepEqual(loadConfig({ REELAY_OPERATOR_KEYS: 'key_1, key_2' }).operatorKeys, ['key_1', 'key_2']);
});
