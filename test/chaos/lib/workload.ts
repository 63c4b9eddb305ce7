import { call, type SubscriptionView } from "./api.ts";
import type { ChaosReceiver, Flaps } from "./receiver.ts";

export const TENANT = "chaos";
/** Ceilings of every subscription but the one meant to pause (far above any queue of the run). */
export const HIGH_CEILING = 1_000_000;
/** The `ceiling` subscription's pending ceiling: low, so automatic pauses happen during the run. */
export const LOW_CEILING = 100;

export interface SubSpec {
  key: string;
  ordering: "ordered" | "unordered";
  types: string[];
  maxInFlight: number;
  pendingCeiling: number;
  flaps: Flaps;
  alwaysFails?: (seq: number) => boolean;
}

const ROUGH: Flaps = { fail: 0.08, reset: 0.03, hang: 0.02, slow: 0.04 };
/** Ordered queues send one at a time: each hang holds the queue for a request timeout, so fewer of them. */
const MILD: Flaps = { fail: 0.03, reset: 0.01, hang: 0.003, slow: 0.01 };
export const ORDERED_QUEUES = 4;

/**
 * The subscriptions of the run (tenant `chaos`): four ordered queues (one event type each), one unordered
 * queue taking everything, one whose endpoint never accepts every twentieth event (seq ≡ 5 mod 20, all of type `u.a`) (those end in the DLQ),
 * and one with a low pending ceiling that the run pauses and resumes.
 */
export function subscriptionSpecs(): SubSpec[] {
  const specs: SubSpec[] = [];
  for (let i = 0; i < ORDERED_QUEUES; i++) {
    specs.push({
      key: `ord-${i}`,
      ordering: "ordered",
      types: [`o.${i}`],
      maxInFlight: 1,
      pendingCeiling: HIGH_CEILING,
      flaps: MILD,
    });
  }
  specs.push({
    key: "all",
    ordering: "unordered",
    types: ["*"],
    maxInFlight: 100,
    pendingCeiling: HIGH_CEILING,
    flaps: ROUGH,
  });
  specs.push({
    key: "dlq",
    ordering: "unordered",
    types: ["u.a"],
    maxInFlight: 20,
    pendingCeiling: HIGH_CEILING,
    flaps: ROUGH,
    alwaysFails: (seq) => seq % 20 === 5,
  });
  specs.push({
    key: "ceiling",
    ordering: "unordered",
    types: ["u.b"],
    maxInFlight: 10,
    pendingCeiling: LOW_CEILING,
    flaps: MILD,
  });
  return specs;
}

/** Event `seq`'s type: 40 % ordered (spread over the ordered queues), 30 % `u.a`, 30 % `u.b`. */
export function typeOf(seq: number): string {
  const r = seq % 10;
  if (r < ORDERED_QUEUES) return `o.${r}`;
  return r < 7 ? "u.a" : "u.b";
}

export function matches(spec: SubSpec, type: string): boolean {
  return spec.types.includes("*") || spec.types.includes(type);
}

export interface Subscriptions {
  specs: SubSpec[];
  /** key → subscription_id, and back. */
  idOf: Map<string, string>;
  keyOf: Map<string, string>;
}

/** Creates the run's subscriptions through the API and registers their endpoints with the receiver. */
export async function createSubscriptions(
  apiUrl: string,
  token: string,
  receiver: ChaosReceiver,
): Promise<Subscriptions> {
  const specs = subscriptionSpecs();
  const idOf = new Map<string, string>();
  const keyOf = new Map<string, string>();
  for (const s of specs) {
    const res = await call<{ subscription_id: string; secret: string }>(
      apiUrl,
      token,
      "POST",
      "/v1/subscriptions",
      {
        tenant_id: TENANT,
        url: receiver.url(s.key),
        event_types: s.types,
        ordering: s.ordering,
        max_in_flight: s.maxInFlight,
        pending_ceiling: s.pendingCeiling,
        dlq_ceiling: HIGH_CEILING,
      },
    );
    if (res.status !== 201) throw new Error(`creating ${s.key}: ${res.status} ${JSON.stringify(res.body)}`);
    receiver.serve(s.key, {
      secret: res.body.secret,
      flaps: s.flaps,
      ...(s.alwaysFails ? { alwaysFails: s.alwaysFails } : {}),
    });
    idOf.set(s.key, res.body.subscription_id);
    keyOf.set(res.body.subscription_id, s.key);
  }
  return { specs, idOf, keyOf };
}

/**
 * The run's operator: resumes a subscription a ceiling paused (raising that ceiling, as a person would), and
 * lowers the `ceiling` subscription's ceiling again a while later so that it can pause once more. Pauses
 * by a ceiling never clear themselves; every one the operator met is counted, to compare with the audit log.
 */
export class Operator {
  /** Automatic pauses met and resumed, per subscription id. */
  readonly resumedAutoPauses = new Map<string, number>();
  readonly manualPauses = new Map<string, number>();
  readonly errors: string[] = [];
  private lowerAt = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private urlIndex = 0;

  constructor(
    private readonly urls: () => string[],
    private readonly token: string,
    private readonly subs: Subscriptions,
  ) {}

  start(everyMs = 1000): void {
    this.timer = setInterval(() => void this.pass(false), everyMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.busy) await new Promise((r) => setTimeout(r, 50));
  }

  private next(): string {
    const urls = this.urls();
    this.urlIndex = (this.urlIndex + 1) % urls.length;
    return urls[this.urlIndex]!;
  }

  /** Pauses a subscription by hand (the pending queue grows past its ceiling meanwhile). */
  async pause(key: string): Promise<boolean> {
    return this.patch(key, { status: "paused", reason: "chaos: manual pause" }, "manual pause");
  }

  async resume(key: string): Promise<boolean> {
    return this.patch(key, { status: "active", reason: "chaos: manual resume" }, "manual resume");
  }

  private async patch(key: string, body: object, what: string): Promise<boolean> {
    const id = this.subs.idOf.get(key)!;
    for (let i = 0; i < 20; i++) {
      try {
        const res = await call(this.next(), this.token, "PATCH", `/v1/subscriptions/${id}`, body, 5000);
        if (res.status === 200) {
          if (what === "manual pause") this.manualPauses.set(id, (this.manualPauses.get(id) ?? 0) + 1);
          return true;
        }
      } catch {
        /* an API down: the next one */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    this.errors.push(`${what} of ${key} failed 20 times`);
    return false;
  }

  /** One look at every subscription; `final` resumes everything paused and lowers nothing. */
  async pass(final: boolean): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const res = await call<{ items: SubscriptionView[] }>(
        this.next(),
        this.token,
        "GET",
        `/v1/subscriptions?tenant_id=${TENANT}&limit=100`,
        undefined,
        5000,
      );
      if (res.status !== 200) return;
      const now = Date.now();
      for (const s of res.body.items) {
        const auto = s.pause_reason === "pending_ceiling" || s.pause_reason === "dlq_ceiling";
        if (s.status === "paused" && (auto || final)) {
          const r = await call(
            this.next(),
            this.token,
            "PATCH",
            `/v1/subscriptions/${s.subscription_id}`,
            {
              status: "active",
              pending_ceiling: HIGH_CEILING,
              dlq_ceiling: HIGH_CEILING,
              reason: "chaos operator",
            },
            5000,
          );
          if (r.status === 200 && auto) {
            this.resumedAutoPauses.set(
              s.subscription_id,
              (this.resumedAutoPauses.get(s.subscription_id) ?? 0) + 1,
            );
            this.lowerAt.set(s.subscription_id, now + 10_000);
          }
        } else if (!final && (this.lowerAt.get(s.subscription_id) ?? Number.POSITIVE_INFINITY) < now) {
          const r = await call(
            this.next(),
            this.token,
            "PATCH",
            `/v1/subscriptions/${s.subscription_id}`,
            { pending_ceiling: LOW_CEILING },
            5000,
          );
          if (r.status === 200) this.lowerAt.delete(s.subscription_id);
        }
      }
    } catch {
      /* an API or the database is down: next pass */
    } finally {
      this.busy = false;
    }
  }

  /** Stops lowering ceilings (the final drain must not pause anything again). */
  calm(): void {
    this.lowerAt.clear();
  }
}
