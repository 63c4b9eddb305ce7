/**
 * An abortable sleep: wait() resolves on wake(), at the time given to wakeAt() if that comes first, on
 * the timeout, or at once if a wake came meanwhile.
 */
export class Wakeup {
  private pending = false;
  /** The earliest wakeAt() time not yet reached (ms since the epoch), kept across waits. */
  private earliest = Number.POSITIVE_INFINITY;
  private resolve: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private deadline = Number.POSITIVE_INFINITY;

  wake(): void {
    if (this.resolve) {
      const r = this.resolve;
      this.clear();
      r();
    } else {
      this.pending = true;
    }
  }

  /** Ends the sleep at `atMs` (ms since the epoch) unless it ends sooner; for this wait or the next one. */
  wakeAt(atMs: number): void {
    if (atMs >= this.earliest) return;
    this.earliest = atMs;
    if (this.resolve && atMs < this.deadline) this.arm(atMs);
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.arm(Math.min(Date.now() + Math.max(0, timeoutMs), this.earliest));
    });
  }

  private arm(deadline: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.deadline = deadline;
    this.timer = setTimeout(
      () => {
        const r = this.resolve;
        if (Date.now() >= this.earliest) this.earliest = Number.POSITIVE_INFINITY;
        this.clear();
        r?.();
      },
      Math.max(0, deadline - Date.now()),
    );
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.resolve = null;
    this.deadline = Number.POSITIVE_INFINITY;
  }
}
