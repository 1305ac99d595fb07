import { randomBytes } from '../core/ids.js';
import { BlockedUrlError, type UrlGuard } from '../net/guard.js';
import type { Store, WebhookEndpoint } from '../store/port.js';
import { ApiError } from './errors.js';

/**
 * Checks a URL Reelay will call back with the SSRF guard. A host that does not resolve yet may
 * resolve later: only a definite refusal is an error (`what refused: why`, naming `param`).
 */
export async function checkHookUrl(guard: UrlGuard, url: string, what: string, param: string): Promise<void> {
  try {
    await guard.check(url);
  } catch (e) {
    if (e instanceof BlockedUrlError && !e.message.startsWith('cannot resolve')) throw new ApiError('validation', `${what} refused: ${e.message}`, param);
  }
}

/**
 * A tenant's webhook endpoints: URLs that are sent the task events they subscribe to
 * (`video.completed`, `video.failed`, `video.canceled`) for every task of the tenant, whichever
 * door made it, signed with the key's webhook secret. A 410 answer disables one.
 */
export class WebhookService {
  /** Told when this process adds or removes an endpoint (the engine's cache reads them again). */
  changed: () => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly guard: UrlGuard,
  ) {}

  async create(tenantId: string, url: string, events: string[]): Promise<WebhookEndpoint> {
    await checkHookUrl(this.guard, url, 'webhook URL', 'url');
    const endpoint: WebhookEndpoint = { id: `we_${randomBytes(12).toString('hex')}`, tenantId, url, events: [...new Set(events)], createdAt: Date.now(), disabledAt: null, disabledReason: null };
    await this.store.createEndpoint(endpoint);
    this.changed();
    return endpoint;
  }

  list(tenantId: string): Promise<WebhookEndpoint[]> {
    return this.store.listEndpoints(tenantId);
  }

  async remove(tenantId: string, id: string): Promise<boolean> {
    const gone = await this.store.deleteEndpoint(tenantId, id);
    if (gone) this.changed();
    return gone;
  }
}
