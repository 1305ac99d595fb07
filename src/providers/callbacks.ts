import { createHmac } from 'node:crypto';
import type { ProviderConfig } from './config.js';

/**
 * The secret path segment of a provider's callback URL: an HMAC of the label under the provider's
 * own key, so it survives restarts and only someone holding that key can make one.
 */
export function callbackToken(p: ProviderConfig): string {
  return createHmac('sha256', p.apiKey ?? '').update(`reelay-upstream-callback:${p.label}`).digest('base64url').slice(0, 32);
}

/** Where a provider's upstream should call back, or undefined when callbacks are off for it. */
export function callbackUrl(publicUrl: string, p: ProviderConfig): string | undefined {
  return p.options.callbacks === true && p.apiKey ? `${publicUrl}/upstream-callbacks/${p.label}/${callbackToken(p)}` : undefined;
}
