import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Reelay's Prometheus metrics (served at `/metrics` when `REELAY_METRICS=on`). One registry per
 * gateway, so tests can run several in one process.
 */
export class Metrics {
  readonly registry = new Registry();

  /** How late a step ran after its scheduled time (`next_run_at`): the scheduler's promptness. */
  readonly lateness = new Histogram({
    name: 'reelay_engine_step_lateness_seconds',
    help: 'Seconds between a step\'s scheduled time and its start',
    labelNames: ['step'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly steps = new Counter({
    name: 'reelay_engine_steps_total',
    help: 'Engine steps run, by kind',
    labelNames: ['step'] as const,
    registers: [this.registry],
  });

  readonly inFlight = new Gauge({
    name: 'reelay_upstream_jobs_in_flight',
    help: 'Upstream jobs accepted and not finished, by provider',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'reelay_' });
  }
}
