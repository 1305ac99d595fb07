/**
 * The faults the simulator injects, and how it picks them.
 *
 * At create (the upstream refuses the request):
 * - `5xx`: 500 with the upstream's error body;
 * - `429`: 429 with `Retry-After`;
 * - `timeout`: no answer until the client gives up;
 * - `malformed`: 200 with a body that is not JSON;
 * - `recaptcha`: 403 "reCAPTCHA evaluation failed" (what Veo resellers return when Google's
 *   anti-abuse check trips).
 * After acceptance (the job goes wrong):
 * - `fail`: the job ends failed with an upstream error;
 * - `safety`: the job ends failed with a safety rejection;
 * - `stall`: the job stays running forever;
 * - `lost`: the upstream forgets the job (its status answers 404);
 * - `slow-download`: the result downloads at 256 kB/s;
 * - `poll-5xx`: each status request fails with 500 at the given rate (the job itself is fine).
 */
export const CREATE_FAULTS = ['5xx', '429', 'timeout', 'malformed', 'recaptcha'] as const;
export const JOB_FAULTS = ['fail', 'safety', 'stall', 'lost', 'slow-download'] as const;
export const FAULTS = [...CREATE_FAULTS, ...JOB_FAULTS, 'poll-5xx'] as const;
export type CreateFault = (typeof CREATE_FAULTS)[number];
export type JobFault = (typeof JOB_FAULTS)[number];
export type Fault = (typeof FAULTS)[number];

/** Fault → probability (0–1) per create (create and job faults) or per status request (`poll-5xx`). */
export type FaultRates = Partial<Record<Fault, number>>;

/** Parses `5xx=0.1,429=0.05,stall=0.01`. */
export function parseFaultRates(spec: string): FaultRates {
  const rates: FaultRates = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = part.split('=');
    if (!FAULTS.includes(name as Fault)) throw new Error(`unknown fault "${name}" (known: ${FAULTS.join(', ')})`);
    const p = Number(value);
    if (!(p >= 0 && p <= 1)) throw new Error(`fault ${name}: the rate must be between 0 and 1, got "${value}"`);
    rates[name as Fault] = p;
  }
  return rates;
}

/**
 * Picks faults for one create. A prompt can script its own: `[sim:5xx]` gives every create with
 * that prompt a 500; `[sim:5xx*2]` only the first two (so a retry then succeeds); several tags
 * combine (`[sim:recaptcha*1] [sim:stall]`). Without tags, each fault is drawn at its rate.
 */
export class FaultPicker {
  private readonly used = new Map<string, number>();

  constructor(
    private readonly rates: FaultRates,
    private readonly random: () => number = Math.random,
  ) {}

  pick(prompt: string, upstream: string): { create?: CreateFault; job?: JobFault } {
    const tags = [...prompt.matchAll(/\[sim:([a-z0-9-]+)(?:\*(\d+))?(?:@([a-z0-9-]+))?\]/g)];
    if (tags.length > 0) {
      const out: { create?: CreateFault; job?: JobFault } = {};
      for (const [, name, times, only] of tags) {
        if (only && only !== upstream) continue;
        if (!FAULTS.includes(name as Fault)) continue;
        const key = `${upstream}\u0000${prompt}\u0000${name}`;
        const n = this.used.get(key) ?? 0;
        if (times !== undefined && n >= Number(times)) continue;
        if ((CREATE_FAULTS as readonly string[]).includes(name!)) {
          if (out.create) continue;
          out.create = name as CreateFault;
        } else if ((JOB_FAULTS as readonly string[]).includes(name!)) {
          if (out.job || out.create) continue;
          out.job = name as JobFault;
        } else continue;
        this.used.set(key, n + 1);
      }
      return out;
    }
    for (const f of CREATE_FAULTS) if (this.random() < (this.rates[f] ?? 0)) return { create: f };
    for (const f of JOB_FAULTS) if (this.random() < (this.rates[f] ?? 0)) return { job: f };
    return {};
  }

  /**
   * Whether this status request fails with a 500 (`poll-5xx`). `[sim:poll-5xx*N]` fails the
   * first N status requests of jobs with that prompt, `[sim:poll-5xx]` every other one.
   */
  pollFails(prompt: string, jobId: string): boolean {
    const tag = /\[sim:poll-5xx(?:\*(\d+))?\]/.exec(prompt);
    if (tag) {
      const key = `poll\u0000${jobId}`;
      const n = this.used.get(key) ?? 0;
      this.used.set(key, n + 1);
      return tag[1] === undefined ? n % 2 === 0 : n < Number(tag[1]);
    }
    return this.random() < (this.rates['poll-5xx'] ?? 0);
  }
}
