import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tmpDir } from '../../test/tmp.js';
import { readScenario, startSim } from './index.js';

test('a scenario file scripts timing and faults per upstream; a wrong setting is a clear error', async () => {
  const dir = tmpDir();
  const file = join(dir, 'scenario.json');
  writeFileSync(file, JSON.stringify({ duration: 60_000, videoSeconds: 1, upstreams: { kkiai: { faults: { '5xx': 1 } }, kie: { duration: 0 } } }));
  const sim = await startSim({ port: '0', scenario: file, dir: join(dir, 'samples'), small: 'true' });
  after(() => sim.close());
  const post = (path: string, body: object) => fetch(`${sim.url}${path}`, { method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post('/v1/video/create', { model: 'veo3.1-fast', prompt: 'p' })).status, 500, 'kkiai: every create fails');
  const created = (await (await post('/api/v1/veo/generate', { prompt: 'p' })).json()) as { data: { taskId: string } };
  const rec = (await (await fetch(`${sim.url}/api/v1/veo/record-info?taskId=${created.data.taskId}`, { headers: { authorization: 'Bearer k' } })).json()) as { data: { successFlag: number } };
  assert.equal(rec.data.successFlag, 1, 'kie: jobs finish at once');
  const gemini = await fetch(`${sim.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning`, { method: 'POST', headers: { 'x-goog-api-key': 'k', 'content-type': 'application/json' }, body: JSON.stringify({ instances: [{ prompt: 'p' }] }) });
  const op = (await gemini.json()) as { name: string };
  const poll = (await (await fetch(`${sim.url}/v1beta/${op.name}`, { headers: { 'x-goog-api-key': 'k' } })).json()) as { done?: boolean };
  assert.equal(poll.done, undefined, 'others take the scenario-wide 60 s');

  writeFileSync(file, JSON.stringify({ durations: 5 }));
  assert.throws(() => readScenario(file), /unknown setting "durations"/);
  writeFileSync(file, JSON.stringify({ faults: { nope: 0.1 } }));
  await assert.rejects(startSim({ port: '0', scenario: file, dir: join(dir, 'samples') }), /unknown fault "nope"/);
});
