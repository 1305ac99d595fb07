import type { ErrorKind } from './states.js';
import type { Artifact, Resolution, Task, TaskCharge, TaskSpec } from './task.js';

/**
 * What a public model costs, from its rule in the routing file (`price`), in whole credits
 * rounded up: `perSecond` for each second of video asked, at the resolution asked
 * (`perSecondAt` overrides it per resolution), and `extendPerSecond` for each second an extension
 * adds (its own item: an extension is priced apart from a new video).
 */
export interface Price {
  perSecond: number;
  perSecondAt?: Partial<Record<Resolution, number>>;
  extendPerSecond?: number;
  /** A 1080p rendition asked for after success (kie `get-1080p-video`): its own item, flat. */
  hd?: number;
  /** A 4k rendition asked for after success (kie `get-4k-video`): its own item, flat. */
  uhd?: number;
}

/** Which ends give the reservation back (all of them unless the routing file says otherwise). */
export interface RefundPolicy {
  /** A failure of the provider or of Reelay (`upstream`, `internal`, an input that could not be fetched). */
  failed: boolean;
  /** The task passed its deadline. */
  timeout: boolean;
  /** A safety rejection of the prompt or of an image. */
  safety: boolean;
  /** A cancel that stopped the work before it cost anything upstream (`not_submitted`, `upstream_canceled`). */
  canceled: boolean;
}

export const REFUND_ALL: RefundPolicy = { failed: true, timeout: true, safety: true, canceled: true };

/** The charge of a task of this spec, or undefined when it is free (no price, or a price of 0). */
export function chargeOf(price: Price | undefined, spec: Pick<TaskSpec, 'resolution' | 'durationSeconds' | 'video'>): TaskCharge | undefined {
  if (!price) return undefined;
  const extend = spec.video !== undefined;
  const perSecond = extend ? (price.extendPerSecond ?? price.perSecond) : (price.perSecondAt?.[spec.resolution] ?? price.perSecond);
  const credits = Math.ceil(perSecond * spec.durationSeconds);
  return credits > 0 ? { credits, perSecond, item: extend ? 'extend' : 'video' } : undefined;
}

/**
 * The entry that closes a reservation, once: `settle` keeps what the item cost and gives back the
 * rest; `refund` gives back all of it. `amount` is what goes back to the balance, `charged` what
 * the item cost in the end; a rendition's close leaves them out (all of it kept, or all back).
 */
export interface LedgerClose {
  tenantId: string;
  taskId: string;
  /** `video` or `extend` (the task's own), or `hd` / `uhd`: the rendition's reservation still open. */
  item: string;
  kind: 'settle' | 'refund';
  amount?: number;
  charged?: number;
  at: number;
  /** Why: the end (`succeeded`, `content_policy`, `canceled: not_submitted`, …). */
  reason: string;
}

/** A cancel that stopped the work before it ran, or whose upstream took the cancel, is refunded. */
const STOPPED = new Set(['not_submitted', 'upstream_canceled']);

/**
 * The closing entry a step's commit carries, or undefined when it closes nothing: the task holds
 * a charge, and the step ends it (succeeded or failed), or is the cancel step that says what the
 * cancel stopped. A success is charged for the seconds of video it made (rounded up, never more
 * than was reserved); a failure is refunded by its kind, as `policy` says.
 */
export function closingOf(
  task: Pick<Task, 'id' | 'tenantId' | 'state' | 'charge' | 'cancelOutcome' | 'hdState' | 'uhdState'>,
  patch: Partial<Pick<Task, 'state' | 'lastErrorKind' | 'cancelOutcome' | 'hdState' | 'uhdState'>>,
  artifacts: readonly Pick<Artifact, 'kind' | 'durationMs'>[] | undefined,
  policy: RefundPolicy,
  at: number,
): LedgerClose | undefined {
  // A rendition asked for after success closes its own reservation, if it made one (the store
  // finds it): kept when the rendition is stored, given back when it failed.
  if (task.state === 'succeeded') {
    for (const [item, before, after] of [['hd', task.hdState, patch.hdState], ['uhd', task.uhdState, patch.uhdState]] as const) {
      if (before !== 'pending' || (after !== 'ready' && after !== 'failed')) continue;
      const refund = after === 'failed' && policy.failed;
      return { tenantId: task.tenantId, taskId: task.id, item, kind: refund ? 'refund' : 'settle', at, reason: `${item === 'hd' ? '1080p' : '4k'} rendition ${after === 'ready' ? 'stored' : 'failed'}` };
    }
  }
  const charge = task.charge;
  if (!charge) return undefined;
  const close = (refund: boolean, charged: number, reason: string): LedgerClose =>
    refund
      ? { tenantId: task.tenantId, taskId: task.id, item: charge.item, kind: 'refund', amount: charge.credits, charged: 0, at, reason }
      : { tenantId: task.tenantId, taskId: task.id, item: charge.item, kind: 'settle', amount: charge.credits - charged, charged, at, reason };
  if (task.state === 'canceled') {
    const outcome = patch.cancelOutcome;
    if (task.cancelOutcome !== 'pending' || outcome === undefined || outcome === null || outcome === 'pending') return undefined;
    return close(policy.canceled && STOPPED.has(outcome), charge.credits, `canceled: ${outcome}`);
  }
  if (patch.state === 'succeeded' && task.state !== 'succeeded') {
    // The video the commit stores: the provider's, or the final rendition an upsample made.
    const ms = (artifacts?.find((a) => a.kind === 'video') ?? artifacts?.find((a) => a.kind === 'video_hd'))?.durationMs;
    const charged = ms ? Math.min(charge.credits, Math.ceil(charge.perSecond * Math.ceil(ms / 1000 - 0.05))) : charge.credits;
    return close(false, charged, 'succeeded');
  }
  if (patch.state === 'failed' && task.state !== 'failed') {
    const kind: ErrorKind = patch.lastErrorKind ?? 'internal';
    const refund = kind === 'content_policy' ? policy.safety : kind === 'timeout' ? policy.timeout : policy.failed;
    return close(refund, charge.credits, kind);
  }
  return undefined;
}
