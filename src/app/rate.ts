/**
 * A token bucket per tenant: `perMinute` creates a minute, with a burst of as many. In memory, so
 * each process counts its own requests. Tenants idle for a while are forgotten (a full bucket is
 * the same as none).
 */
export class CreateRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(private readonly perMinute: number) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes a token for the tenant: 0 when it may create now, else the seconds until it may. */
  take(tenantId: string, now = Date.now()): number {
    if (this.perMinute <= 0) return 0;
    const b = this.buckets.get(tenantId) ?? { tokens: this.perMinute, at: now };
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.buckets.set(tenantId, b);
      if (this.buckets.size > 100_000) this.forgetFull(now);
      return 0;
    }
    this.buckets.set(tenantId, b);
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  private forgetFull(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * this.perMs >= this.perMinute) this.buckets.delete(k);
  }
}
