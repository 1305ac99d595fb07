import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { WebhookVerificationError } from './errors.js';
import { verifyWebhook } from './webhooks.js';

const SECRET = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;
const OTHER = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const BODY = JSON.stringify({ type: 'video.completed', timestamp: '2026-01-01T00:00:00.000Z', data: { id: 'task_1', state: 'succeeded' } });

/** The headers the `standardwebhooks` package signs `body` with, at `at`. */
function signed(body: string, at = new Date(), secret = SECRET, id = 'msg_task_1_1') {
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, body) };
}

test('a callback signed by the standardwebhooks package verifies, and its body comes back parsed', async () => {
  const headers = signed(BODY);
  assert.deepEqual(await verifyWebhook(BODY, headers, SECRET), JSON.parse(BODY));
  // Bytes as received, a Headers object, header names in any case, the secret among others.
  assert.deepEqual(await verifyWebhook(new TextEncoder().encode(BODY), new Headers(headers), [OTHER, SECRET]), JSON.parse(BODY));
  const shouting = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
  assert.equal((await verifyWebhook(BODY, shouting, SECRET)).type, 'video.completed');
  // During a rotation two signatures come: either secret verifies.
  const both = { ...headers, 'webhook-signature': `${signed(BODY, new Date(Number(headers['webhook-timestamp']) * 1000), OTHER)['webhook-signature']} ${headers['webhook-signature']}` };
  assert.ok(await verifyWebhook(BODY, both, SECRET));
  assert.ok(await verifyWebhook(BODY, both, OTHER));
});

test('a changed body, an old or future timestamp, a wrong secret or a missing header does not verify', async () => {
  const headers = signed(BODY);
  const refused = async (p: Promise<unknown>, message: RegExp) => assert.rejects(p, (e: Error) => e instanceof WebhookVerificationError && message.test(e.message));
  await refused(verifyWebhook(BODY.replace('succeeded', 'failed'), headers, SECRET), /no signature matches/);
  await refused(verifyWebhook(BODY, headers, OTHER), /no signature matches/);
  await refused(verifyWebhook(BODY, { ...headers, 'webhook-id': 'msg_task_1_2' }, SECRET), /no signature matches/);
  await refused(verifyWebhook(BODY, signed(BODY, new Date(Date.now() - 301_000)), SECRET), /too old/);
  await refused(verifyWebhook(BODY, signed(BODY, new Date(Date.now() + 301_000)), SECRET), /too new/);
  await refused(verifyWebhook(BODY, { ...headers, 'webhook-signature': 'v2,abc' }, SECRET), /no signature matches/);
  await refused(verifyWebhook(BODY, { 'webhook-id': 'x', 'webhook-timestamp': headers['webhook-timestamp'] }, SECRET), /missing/);
  await refused(verifyWebhook(BODY, { ...headers, 'webhook-timestamp': 'soon' }, SECRET), /unix seconds/);
  // The tolerance and the clock are the caller's to set.
  const old = signed(BODY, new Date(Date.now() - 3_600_000));
  assert.ok(await verifyWebhook(BODY, old, SECRET, { toleranceSeconds: 7200 }));
  assert.ok(await verifyWebhook(BODY, old, SECRET, { now: new Date(Date.now() - 3_600_000) }));
  // A secret that is not base64 is the caller's mistake, not a forged callback.
  await assert.rejects(verifyWebhook(BODY, headers, 'whsec_not base64!'), TypeError);
});
