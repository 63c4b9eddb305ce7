import { Wakeup } from "./wakeup.ts";

export interface PeriodicLoopOptions {
  /** One pass; resolves with how long to sleep before the next (ms). */
  pass(): Promise<number>;
  /** A pass threw for the `errors`-th time in a row: log it and say how long to back off (ms). */
  failed(err: unknown, errors: number): number;
}

/**
 * A background loop: run a pass, sleep as long as the pass asked (or until `nudge()`), again, until
 * `stop()`, which wakes the sleep and waits for the pass in progress. A pass that throws never ends the
 * loop. The scheduler and the panel's sampler are each one of these.
 */
export class PeriodicLoop {
  private readonly wakeup = new Wakeup();
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: PeriodicLoopOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeup.wake();
    await this.loop;
  }

  /** Ends the current sleep: the next pass runs now. */
  nudge(): void {
    this.wakeup.wake();
  }

  /** Runs the next pass at `atMs` (ms since the epoch) at the latest. */
  wakeAt(atMs: number): void {
    this.wakeup.wakeAt(atMs);
  }

  private async run(): Promise<void> {
    let errors = 0;
    while (this.running) {
      let sleep: number;
      try {
        sleep = await this.opts.pass();
        errors = 0;
      } catch (err) {
        errors += 1;
        sleep = this.opts.failed(err, errors);
      }
      await this.wakeup.wait(sleep);
    }
  }
}
