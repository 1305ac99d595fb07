import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SUPPORTED_NODE, nodeSupported } from './node-version.js';

test('supported Node versions: 20.19+, 22.12+ and later majors; the range is the one package.json declares', () => {
  for (const v of ['20.19.0', '20.20.2', '22.12.0', '22.23.5', '23.11.0', '24.0.0', '24.21.0', '26.10.0', 'v24.22.3']) {
    assert.equal(nodeSupported(v), true, v);
  }
  for (const v of ['18.20.8', '20.0.0', '20.18.3', '21.7.3', '22.0.0', '22.11.0', '16.20.2']) {
    assert.equal(nodeSupported(v), false, v);
  }
  assert.equal(nodeSupported(), true, `the Node running the tests (${process.versions.node})`);
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
  assert.equal(pkg.engines.node, SUPPORTED_NODE);
});
