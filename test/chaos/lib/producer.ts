import { call } from "./api.ts";

export interface AcceptedEvent {
  eventId: number;
  type: string;
  /** When the batch holding it was accepted (ms). */
  at: number;
}

export interface ProducerStats {
  batches: number;
  requests: number;
  /** Requests that failed (network error, timeout, 5xx) and were sent again to the next API. */
  retries: number;
  /** Events answered `duplicate: true`: a retry of a batch a lost answer had already committed. */
  duplicateAnswers: number;
  errors: Record<string, number>;
  longestBatchMs: number;
}

/** A batch that found no API willing to accept it for this long fails the run. */
const BATCH_DEADLINE_MS = 240_000;

/**
 * Sends `total` events in batches (`POST /v1/events/batch`), one batch after another, each event with an
 * idempotency key, paced over `durationS`. A batch that fails (network error, timeout, 5xx) is sent again,
 * to the next API, until accepted: a fault mid-request may neither lose nor duplicate an event. Event
 * `seq` carries `{seq}` as its payload.
 */
export class Producer {
  readonly accepted: (AcceptedEvent | undefined)[] = [];
  readonly stats: ProducerStats = {
    batches: 0,
    requests: 0,
    retries: 0,
    duplicateAnswers: 0,
    errors: {},
    longestBatchMs: 0,
  };
  /** Accepts per API process: [api index, pid, time]. */
  readonly accepts: Array<{ api: number; pid: number; at: number }> = [];
  private stopped = false;

  constructor(
    private readonly urls: readonly string[],
    private readonly token: string,
    private readonly tenant: string,
    private readonly typeOf: (seq: number) => string,
    private readonly pidOfApi: (api: number) => number,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  async run(total: number, durationS: number, batchSize: number): Promise<void> {
    const t0 = Date.now();
    const rate = total / durationS;
    for (let first = 0, batch = 0; first < total && !this.stopped; first += batchSize, batch++) {
      const due = t0 + (first / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const seqs: number[] = [];
      for (let s = first; s < Math.min(total, first + batchSize); s++) seqs.push(s);
      await this.send(seqs, batch);
    }
  }

  private async send(seqs: number[], batch: number): Promise<void> {
    const started = Date.now();
    const body = {
      events: seqs.map((seq) => ({
        tenant_id: this.tenant,
        event_type: this.typeOf(seq),
        payload: { seq },
        idempotency_key: `seq-${seq}`,
      })),
    };
    for (let attempt = 0; ; attempt++) {
      const api = (batch + attempt) % this.urls.length;
      const pid = this.pidOfApi(api);
      this.stats.requests += 1;
      let kind: string;
      try {
        const res = await call<{ events: Array<{ event_id: number; duplicate: boolean }> }>(
          this.urls[api]!,
          this.token,
          "POST",
          "/v1/events/batch",
          body,
          10_000,
        );
        if (res.status === 202) {
          const at = Date.now();
          const events = res.body.events;
          if (events.length !== seqs.length) {
            throw new Error(`batch of ${seqs.length} answered with ${events.length} events`);
          }
          events.forEach((e, i) => {
            const seq = seqs[i]!;
            this.accepted[seq] = { eventId: e.event_id, type: this.typeOf(seq), at };
            if (e.duplicate) this.stats.duplicateAnswers += 1;
          });
          this.accepts.push({ api, pid, at });
          this.stats.batches += 1;
          this.stats.longestBatchMs = Math.max(this.stats.longestBatchMs, at - started);
          return;
        }
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
          throw new Error(`batch refused: ${res.status} ${JSON.stringify(res.body)}`);
        }
        kind = `http_${res.status}`;
      } catch (err) {
        if (err instanceof Error && /^batch /.test(err.message)) throw err;
        kind = err instanceof Error && err.name === "TimeoutError" ? "timeout" : "network";
      }
      this.stats.errors[kind] = (this.stats.errors[kind] ?? 0) + 1;
      this.stats.retries += 1;
      if (Date.now() - started > BATCH_DEADLINE_MS) {
        throw new Error(`no API accepted batch ${batch} within ${BATCH_DEADLINE_MS} ms (last: ${kind})`);
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * (attempt + 1))));
    }
  }
}
