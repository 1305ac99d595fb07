import { createHmac, randomBytes } from 'node:crypto';

/**
 * Webhook signatures. Every callback carries the Standard Webhooks headers (`webhook-id`, stable
 * across retries; `webhook-timestamp`, unix seconds of the try; `webhook-signature`, `v1,<base64
 * HMAC-SHA256 of "id.timestamp.body">` for each live secret, space-separated, so a rotation
 * overlaps), and kie's own (`X-Webhook-Timestamp`, `X-Webhook-Signature`: base64 HMAC-SHA256 of
 * "taskId.timestamp" keyed by the secret's text), so kie receivers verify unchanged.
 */

const PREFIX = 'whsec_';

/** How long a rotated-out secret keeps signing beside the new one. */
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;

/** A new secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks writes them. */
export function newWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

/** The HMAC key of a secret: the bytes after `whsec_` (base64). */
function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
}

/** `v1,<signature>` of one secret over `id.timestamp.body`. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The headers of one try of a callback, signed with every live secret (newest first). */
export function signedHeaders(secrets: readonly string[], id: string, timestamp: number, body: string, taskId: string): Record<string, string> {
  if (secrets.length === 0) return {};
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => sign(s, id, timestamp, body)).join(' '),
    'x-webhook-timestamp': String(timestamp),
    'x-webhook-signature': createHmac('sha256', secrets[0]!).update(`${taskId}.${timestamp}`).digest('base64'),
  };
}
