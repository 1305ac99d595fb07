/**
 * The download lane's slots, taken by a poll that found its job done or by a download started in
 * the lane. A poll that finds every slot taken waits in a bounded queue, off the step slots; when
 * the queue is full too, the task ends its step and waits for the lane as data: in the engine's
 * memory (`Engine.awaiting`, nothing committed), or committed with its `result_url` for the lane's
 * claim when memory is full.
 */
export class DownloadLane {
  active = 0;
  private readonly waiters: (() => void)[] = [];
  /**
   * Tasks wait for the lane outside its queue (in the engine's memory or in the store). Until the
   * lane has caught up with them, later arrivals wait there too rather than in the queue, where
   * they would overtake those older ones forever under a steady load.
   */
  private overflowing = false;

  constructor(
    readonly limit: number,
    readonly queueLimit: number,
    private readonly hooks: { freed(): void; parked(delta: number): void },
  ) {}

  get free(): number {
    return this.limit - this.active;
  }

  /** `true`: a slot is ours. A promise: queued, resolved with a slot. `false`: lane and queue full. */
  enter(): boolean | Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return true;
    }
    if (this.overflowing || this.waiters.length >= this.queueLimit) {
      this.overflowing = true;
      return false;
    }
    this.hooks.parked(1);
    return new Promise<void>((resolve) =>
      this.waiters.push(() => {
        this.hooks.parked(-1);
        resolve();
      }),
    );
  }

  /** Takes up to `n` free slots at once (for a claim of that many); returns how many. */
  reserve(n: number): number {
    const got = Math.max(0, Math.min(n, this.free));
    this.active += got;
    return got;
  }

  /** The tasks that waited outside the queue have all been started: arrivals may queue again. */
  caughtUp(): void {
    this.overflowing = false;
  }

  /** Gives a slot back: to the next in the queue, if any. */
  finish(): void {
    const next = this.waiters.shift();
    if (next) return next(); // the slot passes to the next in the queue
    this.active--;
    this.hooks.freed();
  }
}
