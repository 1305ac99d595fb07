/**
 * The one "claim while there is room" loop, used by the engine's step slots, its download lane and
 * the callback sender. `run()` starts a pass, unless one is running: then that pass goes round once
 * more when it ends, so passes never overlap and no call is lost. A pass calls `claim` again for as
 * long as it answers `true` (it filled its batch: more may be due). An error ends the pass and is
 * reported; the next `run()` starts afresh.
 */
export class ClaimLoop {
  private running = false;
  private again = false;

  constructor(
    private readonly claim: () => Promise<boolean>,
    private readonly onError: (e: unknown) => void,
  ) {}

  async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        if (await this.claim()) this.again = true;
      } while (this.again);
    } catch (e) {
      this.onError(e);
    } finally {
      this.running = false;
    }
  }
}
