import { WebhookVerificationError } from './errors.js';
import type { WebhookEvent } from './types.js';

/** The headers of a callback: a `Headers`, or Node's `req.headers` (values may be arrays). */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/** What `verify` takes besides the callback. */
export interface VerifyOptions {
  /** How far `webhook-timestamp` may be from now, either way (default 300 s). */
  toleranceSeconds?: number;
  /** The time to check the timestamp against (default: now). */
  now?: Date;
}

const DEFAULT_TOLERANCE_S = 300;
const PREFIX = 'whsec_';
const encoder = new TextEncoder();

/** A header's value, whatever the case of its name; the values of a repeated header joined by a space. */
function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name || v === undefined) continue;
    return Array.isArray(v) ? v.join(' ') : v;
  }
  return undefined;
}

function base64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Equal bytes, in a time that depends only on their length. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** The HMAC key of a secret: the base64 bytes after `whsec_`. A secret that is not base64 is a `TypeError`. */
async function keyOf(secret: string): ReturnType<typeof crypto.subtle.importKey> {
  let bytes: Uint8Array;
  try {
    bytes = base64(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret);
  } catch {
    throw new TypeError('a webhook secret is whsec_ and base64, as `reelay keys webhook-secret` prints it');
  }
  return crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

/**
 * Checks a callback's Standard Webhooks signature and returns its parsed body. `payload` is the
 * raw body as received (not a re-serialized one); `secret` is the key's `whsec_…` secret, or
 * several (during a rotation, say): the callback verifies when any `v1,` signature of its
 * `webhook-signature` matches any of them. A timestamp further than `toleranceSeconds` from now
 * is refused, so an old callback cannot be replayed.
 *
 * The body is typed as a native callback's (`{type, timestamp, data: Task}`); pass `T` for the
 * body another door sends (kie, Gemini).
 *
 * @throws WebhookVerificationError when a header is missing, the timestamp is out of range, no
 *   signature matches, or the body is not JSON.
 * @example
 *   const event = await Reelay.webhooks.verify(rawBody, req.headers, process.env.REELAY_WEBHOOK_SECRET!);
 *   if (event.type === 'video.completed') console.log(event.data.outputs.video);
 */
export async function verifyWebhook<T = WebhookEvent>(payload: string | Uint8Array, headers: WebhookHeaders, secret: string | string[], opts: VerifyOptions = {}): Promise<T> {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signature = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signature) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature');
  if (!/^\d{1,15}$/.test(timestamp.trim())) throw new WebhookVerificationError('webhook-timestamp is not unix seconds');
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_S;
  const at = Number(timestamp.trim());
  if (at < now - tolerance) throw new WebhookVerificationError('webhook-timestamp is too old');
  if (at > now + tolerance) throw new WebhookVerificationError('webhook-timestamp is too new');

  const body = typeof payload === 'string' ? encoder.encode(payload) : payload;
  const head = encoder.encode(`${id}.${timestamp.trim()}.`);
  const signed = new Uint8Array(head.length + body.length);
  signed.set(head);
  signed.set(body, head.length);
  const given: Uint8Array[] = [];
  for (const part of signature.split(' ')) {
    const [version, sig] = part.split(',', 2);
    if (version !== 'v1' || !sig) continue;
    try {
      given.push(base64(sig));
    } catch {
      // not base64: matches nothing
    }
  }
  let ok = false;
  for (const s of Array.isArray(secret) ? secret : [secret]) {
    const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await keyOf(s), signed));
    // Every signature is compared, whichever matched, so the time taken tells nothing.
    for (const g of given) ok = same(mac, g) || ok;
  }
  if (!ok) throw new WebhookVerificationError('no signature matches');
  try {
    return JSON.parse(typeof payload === 'string' ? payload : new TextDecoder().decode(payload)) as T;
  } catch {
    throw new WebhookVerificationError('the body is not JSON');
  }
}

/** Webhook helpers: `verify`, usable without a client. */
export const webhooks = { verify: verifyWebhook } as const;
