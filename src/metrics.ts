import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** One registry per Herald process (tests start several in one Node process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "herald_process_" });
  return {
    registry,
    deliveries: new Counter({
      name: "herald_deliveries_total",
      help: "Delivery attempts by outcome (delivered, failed, dlq) and error kind",
      labelNames: ["outcome", "error_kind"] as const,
      registers: [registry],
    }),
    attemptLatency: new Histogram({
      name: "herald_attempt_duration_seconds",
      help: "Time of one POST, from send to answer or error",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    claims: new Counter({
      name: "herald_claimed_total",
      help: "Deliveries claimed by this dispatcher",
      registers: [registry],
    }),
    chained: new Counter({
      name: "herald_chained_total",
      help: "Ordered queue heads claimed by the statement that recorded their predecessor (counted in herald_claimed_total too)",
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: "herald_in_flight",
      help: "POSTs in flight in this process",
      registers: [registry],
    }),
    leasesExpired: new Counter({
      name: "herald_leases_expired_total",
      help: "in_flight rows whose lease expired and were settled as worker lost",
      registers: [registry],
    }),
    staleResults: new Counter({
      name: "herald_stale_results_total",
      help: "Results that arrived after their lease was taken back (ignored)",
      registers: [registry],
    }),
    pushTrigger: new Counter({
      name: "herald_push_trigger_total",
      help: "Push-drain triggers by outcome (success, skipped, backoff, error)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    schedulerSkips: new Counter({
      name: "herald_scheduler_skips_total",
      help: "Queues the scheduler skipped, by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
