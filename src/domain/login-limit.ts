/**
 * Failed-login limiting for the panel: at most `maxFailures` wrong tokens per client address within
 * `windowMs`; after that the address is refused until its window ends. A success clears the address.
 * Pure and bounded: at most `maxClients` addresses are tracked (the oldest window is forgotten first).
 */
export interface LoginLimitOptions {
  maxFailures: number;
  windowMs: number;
  maxClients: number;
}

export const LOGIN_LIMIT: LoginLimitOptions = { maxFailures: 10, windowMs: 15 * 60_000, maxClients: 10_000 };

export class LoginLimit {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(private readonly opts: LoginLimitOptions = LOGIN_LIMIT) {}

  /** Milliseconds until `client` may try again; 0 when it may try now. */
  retryAfterMs(client: string, now: number): number {
    const f = this.failures.get(client);
    if (!f) return 0;
    const end = f.since + this.opts.windowMs;
    if (now >= end) {
      this.failures.delete(client);
      return 0;
    }
    return f.count >= this.opts.maxFailures ? end - now : 0;
  }

  failed(client: string, now: number): void {
    const f = this.failures.get(client);
    if (f && now < f.since + this.opts.windowMs) {
      f.count += 1;
      return;
    }
    this.failures.delete(client);
    if (this.failures.size >= this.opts.maxClients) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(client, { count: 1, since: now });
  }

  succeeded(client: string): void {
    this.failures.delete(client);
  }
}
