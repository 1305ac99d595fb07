import type { Logger } from 'pino';
import { coerceError } from '../providers/port.js';
import type { Store, WebhookEndpoint } from '../store/port.js';

/** The task events an endpoint may subscribe to. */
export const ENDPOINT_EVENTS = ['video.completed', 'video.failed', 'video.canceled'] as const;
export type EndpointEvent = (typeof ENDPOINT_EVENTS)[number];

/**
 * Every tenant's webhook endpoints, kept in memory for the engine's commits (which owe their
 * deliveries in the same transaction as a task's end, and so cannot wait for a read). Read again
 * every `refreshMs` (10 s) and whenever this process changes one: an endpoint added or removed on
 * another process takes effect within that time.
 */
export class EndpointCache {
  private byTenant = new Map<string, WebhookEndpoint[]>();
  /** Endpoints this process disabled: a read that began before the disable must not bring one back. */
  private readonly forgotten = new Set<string>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly refreshMs = 10_000,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    try {
      const next = new Map<string, WebhookEndpoint[]>();
      for (const e of await this.store.listEndpoints()) {
        if (e.disabledAt !== null || this.forgotten.has(e.id)) continue;
        next.set(e.tenantId, [...(next.get(e.tenantId) ?? []), e]);
      }
      this.byTenant = next;
    } catch (e) {
      this.log.warn({ err: coerceError(e).message }, 'could not read the webhook endpoints; the last ones read are used');
    }
  }

  /** Drops an endpoint at once (this process disabled it), before the next read. */
  forget(endpointId: string): void {
    this.forgotten.add(endpointId);
    for (const [tenant, list] of this.byTenant) {
      if (list.some((e) => e.id === endpointId)) this.byTenant.set(tenant, list.filter((e) => e.id !== endpointId));
    }
  }

  /** The tenant's enabled endpoints subscribed to `event`. */
  subscribed(tenantId: string, event: EndpointEvent): WebhookEndpoint[] {
    return (this.byTenant.get(tenantId) ?? []).filter((e) => e.events.includes(event));
  }
}
