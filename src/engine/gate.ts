import type { Task } from '../core/task.js';
import type { TaskPatch } from '../store/port.js';
import type { ProviderConfig } from '../providers/config.js';

/**
 * Per-provider limits on submissions, kept by the engine that submits:
 * - `maxInFlight`: upstream jobs accepted and not finished (the count starts from the store, then
 *   follows every commit);
 * - `ratePerSecond`: new submissions per second (a token bucket with a one-second burst).
 * A task that finds its provider full waits and asks again; tasks are claimed in `next_run_at`
 * order, so the ones that waited longest get the next free slot.
 */
export class ProviderGate {
  private readonly inFlight = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** Slots taken by submissions in progress (task id → provider), counted in `inFlight` already. */
  private readonly reserved = new Map<string, string>();

  /** Seeds the in-flight counts (from the store, at start). */
  reset(counts: Record<string, number>): void {
    this.inFlight.clear();
    for (const [label, n] of Object.entries(counts)) this.inFlight.set(label, n);
  }

  /** Every provider's in-flight count. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.inFlight);
  }

  count(label: string): number {
    return this.inFlight.get(label) ?? 0;
  }

  /**
   * May a task be submitted to this provider now? When not, the wait before asking again. A
   * granted call takes a token and reserves a slot until the step is committed (`settle`).
   */
  admit(p: ProviderConfig, now: number, taskId: string): { ok: true } | { ok: false; waitMs: number; why: string } {
    if (this.count(p.label) >= p.maxInFlight) return { ok: false, waitMs: 500, why: `${p.label} has ${p.maxInFlight} jobs running (maxInFlight)` };
    if (p.ratePerSecond !== undefined) {
      const b = this.buckets.get(p.label) ?? { tokens: p.ratePerSecond, at: now };
      b.tokens = Math.min(Math.max(p.ratePerSecond, 1), b.tokens + ((now - b.at) / 1000) * p.ratePerSecond);
      b.at = now;
      this.buckets.set(p.label, b);
      if (b.tokens < 1) return { ok: false, waitMs: Math.ceil(((1 - b.tokens) / p.ratePerSecond) * 1000), why: `${p.label} is at ${p.ratePerSecond} submissions per second (ratePerSecond)` };
      b.tokens -= 1;
    }
    this.reserved.set(taskId, p.label);
    this.inFlight.set(p.label, this.count(p.label) + 1);
    return { ok: true };
  }

  /**
   * Follows a step: a job starts when a task gets an upstream id, ends when it loses it. `patch`
   * is the committed change, or undefined when nothing was committed. A slot reserved by `admit`
   * becomes the job, or is given back.
   */
  settle(before: Task, patch: TaskPatch | undefined): void {
    const reservedFor = this.reserved.get(before.id);
    if (reservedFor !== undefined) {
      this.reserved.delete(before.id);
      this.inFlight.set(reservedFor, Math.max(0, this.count(reservedFor) - 1));
    }
    if (!patch) return;
    const was = live(before.state, before.upstreamId) ? before.provider : undefined;
    const state = patch.state ?? before.state;
    const upstreamId = patch.upstreamId !== undefined ? patch.upstreamId : before.upstreamId;
    const now = live(state, upstreamId) ? (patch.provider ?? before.provider) : undefined;
    if (was === now) return;
    if (was) this.inFlight.set(was, Math.max(0, this.count(was) - 1));
    if (now) this.inFlight.set(now, this.count(now) + 1);
  }
}

function live(state: Task['state'], upstreamId: string | null): boolean {
  return state === 'generating' && upstreamId !== null;
}
