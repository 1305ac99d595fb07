import { createHash } from 'node:crypto';
import type { Price, RefundPolicy } from '../core/credits.js';
import type { Task } from '../core/task.js';
import type { ProviderConfig } from '../providers/config.js';
import type { Provider } from '../providers/port.js';
import type { ModelRule, RoutingConfig } from './config.js';

/** One route of a task: where its submission number `index` goes. */
export interface Route {
  /** Position in the task's plan (stored as `routeIndex`). */
  index: number;
  provider: ProviderConfig;
  /** The upstream model id sent to the provider. */
  model: string;
}

/**
 * Routes tasks to providers. A task's plan is its model's routes in the order it tries them:
 * by priority, and among routes of equal priority in a weighted order drawn from the task id, so
 * the plan is the same in every process and after a restart.
 */
export class Router {
  constructor(
    readonly config: RoutingConfig,
    private readonly providers: ReadonlyMap<string, Provider>,
  ) {}

  get failoverOnSafety(): boolean {
    return this.config.failoverOnSafety;
  }

  /**
   * Removes every configured upstream secret from a text (an upstream may echo a key in an error):
   * what is stored in task records and logs goes through this.
   */
  redact(text: string): string {
    let out = text;
    for (const p of this.config.providers.values()) {
      if (p.apiKey && p.apiKey.length >= 6) out = out.split(p.apiKey).join('[redacted]');
    }
    return out;
  }

  /** What a task of `model` costs a metered key, from the first rule that matches it (none: free). */
  price(model: string): Price | undefined {
    return this.ruleFor(model)?.price;
  }

  /** The first model rule that matches `model`: its routes and its price. */
  private ruleFor(model: string): ModelRule | undefined {
    return this.config.models.find((m) => m.match.some((pattern) => matches(pattern, model)));
  }

  /** Which ends give a metered task's credits back. */
  get refund(): RefundPolicy {
    return this.config.refund;
  }

  /** The provider behind a label, if it is still configured. */
  provider(label: string): Provider | undefined {
    return this.providers.get(label);
  }

  /** Whether new work may go to this provider (configured and enabled). */
  usable(label: string): boolean {
    return this.providers.has(label) && this.config.providers.get(label)?.enabled !== false;
  }

  /**
   * A task that extends a video (`spec.video`) keeps only the routes whose provider can extend; it
   * may then have none (`TaskService` refuses such a task before storing it).
   */
  plan(task: Pick<Task, 'id' | 'model'> & { spec?: Pick<Task['spec'], 'video' | 'videoJob'> }): Route[] {
    const rule = this.ruleFor(task.model);
    const extend = task.spec?.video !== undefined;
    const job = task.spec?.videoJob;
    if (!rule) return [{ index: 0, provider: this.config.providers.get('local')!, model: task.model }].filter((r) => !extend || this.canExtend(r.provider.label, job));
    const byPriority = new Map<number, typeof rule.routes>();
    for (const r of rule.routes) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
    const ordered = [...byPriority.entries()]
      .sort(([a], [b]) => a - b)
      .flatMap(([priority, group]) => weightedOrder(group, `${task.id}/${priority}`));
    return ordered
      .filter((r) => !extend || this.canExtend(r.provider, job))
      .map((r, index) => ({ index, provider: this.config.providers.get(r.provider)!, model: r.model ?? task.model }));
  }

  /** Whether the provider behind a label can continue a video (made by the upstream job `job`, if known). */
  canExtend(label: string, job?: { provider: string }): boolean {
    const can = this.providers.get(label)?.extends;
    return can === true || (can === 'own' && job?.provider === label);
  }

  /**
   * The first usable route at or after `from` (wrapping around), or undefined when none is usable.
   * `wrapped` says whether it went past the end of the plan (a new round over all routes).
   */
  next(plan: Route[], from: number): { route: Route; wrapped: boolean } | undefined {
    for (let step = 0; step < plan.length; step++) {
      const i = (from + step) % plan.length;
      if (this.usable(plan[i]!.provider.label)) return { route: plan[i]!, wrapped: from + step >= plan.length };
    }
    return undefined;
  }
}

const compiled = new Map<string, RegExp>();

/** `*` matches any run of characters; everything else matches itself. Runs on every poll. */
function matches(pattern: string, model: string): boolean {
  if (!pattern.includes('*')) return pattern === model;
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    compiled.set(pattern, re);
  }
  return re.test(model);
}

/** A weighted random order without replacement (key = u^(1/w)), with `u` drawn from `seed`. */
function weightedOrder<T extends { weight: number }>(group: T[], seed: string): T[] {
  if (group.length === 1) return group;
  const keyed = group.map((r, i) => {
    const h = createHash('sha256').update(`${seed}/${i}`).digest();
    const u = (h.readUInt32BE(0) + 1) / 4_294_967_297;
    return { r, key: Math.pow(u, 1 / r.weight) };
  });
  return keyed.sort((a, b) => b.key - a.key).map((k) => k.r);
}
