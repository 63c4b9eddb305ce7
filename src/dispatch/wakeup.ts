/** An abortable sleep: wait() resolves on wake(), on the timeout, or at once if a wake came meanwhile. */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;

  wake(): void {
    if (this.resolve) {
      const r = this.resolve;
      this.clear();
      r();
    } else {
      this.pending = true;
    }
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(
        () => {
          this.clear();
          resolve();
        },
        Math.max(0, timeoutMs),
      );
    });
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.resolve = null;
  }
}
