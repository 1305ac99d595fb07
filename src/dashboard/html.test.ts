import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTask } from '../../test/fixtures.js';
import { html, query, raw } from './html.js';
import { filterOf, matches, readListQuery } from './list.js';
import { barChart } from './overview.js';
import { cookie, sameSite } from './session.js';

test('html escapes every interpolated value, nested templates and raw markup pass as they are', () => {
  const prompt = `<script>alert(1)</script> "a" & 'b'`;
  assert.equal(html`<p title="${prompt}">${prompt}</p>`.text, '<p title="&lt;script&gt;alert(1)&lt;/script&gt; &quot;a&quot; &amp; &#39;b&#39;">&lt;script&gt;alert(1)&lt;/script&gt; &quot;a&quot; &amp; &#39;b&#39;</p>');
  assert.equal(html`<ul>${['<a>', html`<li>${'<b>'}</li>`, null, false, undefined, 3]}</ul>`.text, '<ul>&lt;a&gt;<li>&lt;b&gt;</li>3</ul>');
  assert.equal(html`${raw('<svg></svg>')}`.text, '<svg></svg>');
  assert.equal(query({ a: '1', b: ['x', 'y'], c: '', d: undefined }), '?a=1&b=x&b=y');
});

test('a chart escapes its labels', () => {
  const svg = barChart('<t>', [{ label: '<script>', value: 3 }]).text;
  assert.ok(!svg.includes('<script>'));
  assert.ok(svg.includes('&lt;script&gt;'));
});

test('the session cookie is Secure only when the public URL is https', () => {
  assert.equal(cookie('s', 'v', { secure: true, maxAgeS: 60 }), 's=v; Path=/dashboard; HttpOnly; SameSite=Strict; Secure; Max-Age=60');
  assert.equal(cookie('s', 'v', { secure: false }), 's=v; Path=/dashboard; HttpOnly; SameSite=Strict');
});

test('a POST is same-site by Sec-Fetch-Site and Origin', () => {
  const req = (headers: Record<string, string>) => ({ headers: { host: 'reelay.test:8080', ...headers } }) as never;
  assert.equal(sameSite(req({}), 'http://reelay.test:8080'), true);
  assert.equal(sameSite(req({ 'sec-fetch-site': 'same-origin', origin: 'http://reelay.test:8080' }), 'http://x'), true);
  assert.equal(sameSite(req({ origin: 'https://public.example' }), 'https://public.example'), true);
  assert.equal(sameSite(req({ 'sec-fetch-site': 'cross-site' }), 'http://reelay.test:8080'), false);
  assert.equal(sameSite(req({ 'sec-fetch-site': 'same-site' }), 'http://reelay.test:8080'), false);
  assert.equal(sameSite(req({ origin: 'http://evil.test' }), 'http://reelay.test:8080'), false);
});

test('the list query reads states, filters and times; the filter matches a changed task as the store would', () => {
  const q = readListQuery({ state: ['succeeded', 'bogus', 'failed'], model: ' m1 ', q: 'Owl', from: '2026-01-02T03:04', to: 'not a time', after: 'x1', limit: '500' });
  assert.deepEqual(q, { state: ['failed', 'succeeded'], model: 'm1', q: 'Owl', after: 'x1', from: '2026-01-02T03:04' });
  const f = filterOf({ ...q, to: '2026-01-02T03:05' });
  assert.equal(f.createdFrom, Date.UTC(2026, 0, 2, 3, 4));
  assert.equal(f.createdTo, Date.UTC(2026, 0, 2, 3, 5) + 59_999, 'to takes in its whole minute');
  const t = makeTask({ state: 'succeeded', model: 'm1', createdAt: Date.UTC(2026, 0, 2, 3, 4, 30) }, { prompt: 'an owl at night' });
  assert.equal(matches(t, f), true);
  assert.equal(matches({ ...t, state: 'queued' }, f), false);
  assert.equal(matches({ ...t, model: 'm2' }, f), false);
  assert.equal(matches(t, { search: t.id }), true);
  assert.equal(matches(t, { search: 'heron' }), false);
});
