import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { peer } from '../../test/peer.js';
import { GuardedFetcher, blockedCause } from './fetch.js';
import { BlockedUrlError, UrlGuard } from './guard.js';

test('only public unicast addresses pass', () => {
  const g = new UrlGuard([]);
  for (const ip of ['127.0.0.1', '127.0.0.2', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '::', '::7f00:1', '::a01:203', '::808:808']) {
    assert.throws(() => g.checkAddress(ip, 'h'), BlockedUrlError, ip);
  }
  for (const ip of ['93.184.215.14', '8.8.8.8', '2606:4700::1111']) assert.doesNotThrow(() => g.checkAddress(ip, 'h'), ip);
});

test('the allow-list: host entries match the URL host, CIDRs the address', () => {
  const g = new UrlGuard(['127.0.0.1', 'images.internal', '10.0.0.0/8']);
  assert.doesNotThrow(() => g.parse('http://127.0.0.1:8080/a.png'));
  assert.throws(() => g.parse('http://127.0.0.2/a.png'), BlockedUrlError);
  assert.ok(g.hostAllowed('IMAGES.internal'));
  assert.doesNotThrow(() => g.checkAddress('10.9.9.9', 'x'));
  assert.throws(() => g.checkAddress('192.168.0.1', 'x'), BlockedUrlError);
});

test('schemes, credentials and malformed URLs are refused', () => {
  const g = new UrlGuard([]);
  for (const u of ['file:///etc/passwd', 'gopher://x', 'ftp://93.184.215.14/a', 'http://user:pw@93.184.215.14/', 'not a url', 'http://[::1]/']) {
    assert.throws(() => g.parse(u), BlockedUrlError, u);
  }
});

test('localhost resolves to loopback and is refused at check time', async () => {
  await assert.rejects(new UrlGuard([]).check('http://localhost:1/x'), /loopback/);
});

test('fetch: redirects are checked hop by hop; a connect to a blocked address is refused', async () => {
  const p = await peer({
    '/ok': (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'),
    '/hop': (_q, res) => res.writeHead(302, { location: '/ok' }).end(),
    '/evil': (_q, res) => res.writeHead(301, { location: 'http://127.0.0.2:1/secret' }).end(),
    '/evil6': (_q, res) => res.writeHead(307, { location: 'http://[::1]:1/secret' }).end(),
    '/big': (_q, res) => res.writeHead(200).end(Buffer.alloc(5000)),
  });
  const f = new GuardedFetcher(new UrlGuard(['127.0.0.1']));
  after(async () => {
    await f.close();
    await p.close();
  });
  const ok = await f.fetch(`${p.url}/hop`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), 'hello');
  await assert.rejects(f.fetch(`${p.url}/evil`), BlockedUrlError);
  await assert.rejects(f.fetch(`${p.url}/evil6`), BlockedUrlError);
  await assert.rejects(f.fetch(`${p.url}/big`, { maxBytes: 100 }), /over the limit/);
  const viaName = new GuardedFetcher(new UrlGuard([]));
  after(() => viaName.close());
  const err = await viaName.fetch(`http://localhost:${p.port}/ok`).catch((e: unknown) => e);
  assert.ok(blockedCause(err), `blocked at connect: ${String(err)}`);
  assert.equal(p.received.filter((r) => r.path === '/secret').length, 0);
});
