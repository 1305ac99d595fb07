import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { simProvider } from '../../test/sim.js';
import { UrlGuard } from '../net/guard.js';
import { type Exchange, MAX_BODY, cutBody as cut } from './exchanges.js';
import { UpstreamHttp } from './http.js';

test('a body is kept without its secrets and base64 runs, and cut short', () => {
  assert.equal(cut('{"key":"sk-abcdef-123","callBackUrl":"https://reelay.example/upstream-callbacks/kie-main/9f8e7d6c5b4a"}', 'sk-abcdef-123'), '{"key":"[redacted]","callBackUrl":"https://reelay.example/upstream-callbacks/kie-main/[redacted]"}');
  // The key is masked before the cut, so no part of it survives at the edge.
  const edge = cut(`${'x'.repeat(MAX_BODY - 4)}sk-abcdef-123`, 'sk-abcdef-123');
  assert.ok(!edge.includes('sk-a'), edge.slice(-40));
  const image = 'A'.repeat(5000);
  assert.equal(cut(`{"image":"${image}","prompt":"p"}`), '{"image":"<5000 base64 characters>","prompt":"p"}');
  const long = cut('x '.repeat(3000));
  assert.ok(long.length < MAX_BODY + 40 && long.endsWith('(6000 characters)'), long.slice(-40));
});

test('a traced view notes its exchanges with their status and bodies, never a header or a secret query value; the client itself notes none', async () => {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      res.statusCode = req.url?.startsWith('/fail') ? 503 : 200;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ got: body.length, echo: 'ok' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const http = new UpstreamHttp(simProvider('kkiai', base), base, () => ({ authorization: 'Bearer sk-very-secret' }), new UrlGuard([]));
  const exchanges: Exchange[] = [];
  const traced = http.traced(exchanges);
  await traced.call('v1/video/create?key=sk-in-query&model=m', { json: { prompt: 'a lighthouse' } });
  await traced.call('fail/status');
  assert.deepEqual(exchanges.map((e) => [e.method, e.url, e.status]), [
    ['POST', `${base}/v1/video/create?key=%5Bredacted%5D&model=m`, 200],
    ['GET', `${base}/fail/status`, 503],
  ]);
  assert.equal(exchanges[0]!.request, '{"prompt":"a lighthouse"}');
  assert.equal(exchanges[0]!.response, '{"got":25,"echo":"ok"}');
  assert.equal(exchanges[1]!.request, null);
  assert.ok(exchanges.every((e) => e.ms >= 0 && e.at > 0));
  assert.ok(!JSON.stringify(exchanges).includes('sk-'), 'no key');
  await http.call('outside');
  assert.equal(exchanges.length, 2, 'the client itself notes nothing');
});
