import type { Queryable } from "../../../src/store/db.ts";
import type { AcceptedEvent } from "./producer.ts";
import type { ChaosReceiver, Receipt } from "./receiver.ts";
import { matches, type Subscriptions, TENANT } from "./workload.ts";

/** A dispatcher stopped with SIGSTOP at `stopAt` and continued at `contAt`. */
export interface Stall {
  name: string;
  pid: number;
  stopAt: number;
  contAt: number;
}

/** What the end-of-run checks found. Every count named in `violations` must be zero. */
export interface Findings {
  accepted: number;
  eventsInStore: number;
  expectedDeliveries: number;
  delivered: number;
  dlq: number;
  dlqExpected: number;
  receipts: number;
  attempts: number;
  duplicates: number;
  duplicateRate: number;
  /** Duplicates whose first 2xx went back while a crash-type fault was under way (a kill, a stall, a crash). */
  duplicatesAroundCrash: number;
  /** Requests a stalled dispatcher sent after SIGCONT, and which of them it had claimed after SIGCONT. */
  stalledSends: number;
  connections: number;
  unattributedConnections: number;
  autoPauses: number;
  /** Attempts by final status and error kind, e.g. `failed/timeout`. */
  attemptsByOutcome: Record<string, number>;
  violations: Record<string, number>;
  /** Up to 20 examples per violation. */
  examples: Record<string, string[]>;
}

interface PairRow {
  subscription_id: string;
  event_id: string | number;
  attempts: number;
  delivered: number;
  dlq: number;
  active: number;
  failed: number;
  max_attempt: number;
  min_attempt: number;
  distinct_attempts: number;
  webhook_ids: number;
  webhook_id: string;
  positions: number;
  position: string | number;
  dlq_with_reason: boolean;
}

const VIOLATIONS = [
  "accepted_event_missing",
  "accepted_event_id_changed",
  "unexpected_events",
  "lost",
  "not_terminal",
  "unexpected_delivery",
  "two_terminal_rows",
  "attempts_not_contiguous",
  "dlq_without_reason",
  "two_webhook_ids",
  "two_positions",
  "delivered_without_2xx_receipt",
  "receipt_webhook_id_mismatch",
  "unverified_signature",
  "reordered",
  "positions_not_in_acceptance_order",
  "ordered_cursor_wrong",
  "in_flight_at_end",
  "pending_at_end",
  "counter_mismatch",
  "audit_sequence_broken",
  "auto_pause_without_audit",
  "sent_after_lease_lost",
] as const;
export type Violation = (typeof VIOLATIONS)[number];

/**
 * Checks the run's invariants against the store (the run's own database, read directly) and the receiver's
 * record, once production and faults have stopped and the queues drained.
 */
export async function checkInvariants(input: {
  db: Queryable;
  accepted: readonly (AcceptedEvent | undefined)[];
  subs: Subscriptions;
  receiver: ChaosReceiver;
  stalls: readonly Stall[];
  resumedAutoPauses: ReadonlyMap<string, number>;
  /** [from, to] wall-clock windows in which a delivery answered 2xx may be sent again (crashes). */
  crashWindows: ReadonlyArray<readonly [number, number]>;
}): Promise<Findings> {
  const { db, accepted, subs, receiver } = input;
  const violations = Object.fromEntries(VIOLATIONS.map((v) => [v, 0])) as Record<Violation, number>;
  const examples: Record<string, string[]> = {};
  const flag = (v: Violation, example: string, n = 1) => {
    violations[v] += n;
    const list = examples[v] ?? [];
    examples[v] = list;
    if (list.length < 20) list.push(example);
  };

  // Events: every accepted one is stored under the id the API answered, and nothing else is.
  const seqOfEvent = new Map<number, number>();
  const events = await db.query<{ event_id: string | number; seq: number }>(
    `SELECT event_id, (payload->>'seq')::int AS seq FROM events WHERE tenant_id = $1`,
    [TENANT],
  );
  const stored = new Map<number, number>();
  for (const e of events.rows) stored.set(e.seq, Number(e.event_id));
  let acceptedCount = 0;
  accepted.forEach((a, seq) => {
    if (!a) return;
    acceptedCount += 1;
    seqOfEvent.set(a.eventId, seq);
    const id = stored.get(seq);
    if (id === undefined) flag("accepted_event_missing", `seq ${seq} (event ${a.eventId})`);
    else if (id !== a.eventId)
      flag("accepted_event_id_changed", `seq ${seq}: answered ${a.eventId}, stored ${id}`);
  });
  if (events.rows.length !== acceptedCount) {
    flag(
      "unexpected_events",
      `${events.rows.length} events stored, ${acceptedCount} accepted`,
      Math.abs(events.rows.length - acceptedCount),
    );
  }

  // Deliveries, per (subscription, event).
  const pairs = await db.query<PairRow>(
    `SELECT subscription_id, event_id,
            count(*)::int AS attempts,
            (count(*) FILTER (WHERE status = 'delivered'))::int AS delivered,
            (count(*) FILTER (WHERE status = 'dlq'))::int AS dlq,
            (count(*) FILTER (WHERE status IN ('pending', 'in_flight')))::int AS active,
            (count(*) FILTER (WHERE status = 'failed'))::int AS failed,
            max(attempt_number)::int AS max_attempt, min(attempt_number)::int AS min_attempt,
            count(DISTINCT attempt_number)::int AS distinct_attempts,
            count(DISTINCT webhook_id)::int AS webhook_ids, min(webhook_id) AS webhook_id,
            count(DISTINCT position)::int AS positions, min(position) AS position,
            bool_and(status <> 'dlq' OR error_kind IS NOT NULL) AS dlq_with_reason
     FROM deliveries d
     WHERE subscription_id IN (SELECT subscription_id FROM subscriptions WHERE tenant_id = $1)
     GROUP BY subscription_id, event_id`,
    [TENANT],
  );
  const pairOf = new Map<string, PairRow>();
  const webhookOf = new Map<string, { sub: string; seq: number; position: number }>();
  let delivered = 0;
  let dlq = 0;
  let attempts = 0;
  for (const p of pairs.rows) {
    const eventId = Number(p.event_id);
    const key = subs.keyOf.get(p.subscription_id) ?? p.subscription_id;
    const seq = seqOfEvent.get(eventId);
    const label = `${key} event ${eventId} (seq ${seq ?? "?"})`;
    attempts += p.attempts;
    const spec = subs.specs.find((s) => s.key === key);
    const acc = seq === undefined ? undefined : accepted[seq];
    if (seq === undefined || !spec || !acc || !matches(spec, acc.type)) {
      flag("unexpected_delivery", label);
      continue;
    }
    pairOf.set(`${key}|${seq}`, p);
    webhookOf.set(`${key}|${p.webhook_id}`, { sub: key, seq, position: Number(p.position) });
    delivered += p.delivered;
    dlq += p.dlq;
    if (p.delivered + p.dlq > 1)
      flag("two_terminal_rows", `${label}: ${p.delivered} delivered, ${p.dlq} dlq`);
    if (p.delivered + p.dlq === 0) flag("not_terminal", `${label}: ${p.active} pending or in flight`);
    // Attempts 1..n, all but the last failed.
    if (
      p.min_attempt !== 1 ||
      p.max_attempt !== p.attempts ||
      p.distinct_attempts !== p.attempts ||
      p.failed !== p.attempts - 1
    ) {
      flag(
        "attempts_not_contiguous",
        `${label}: attempts ${p.min_attempt}..${p.max_attempt} (${p.attempts} rows, ${p.failed} failed)`,
      );
    }
    if (!p.dlq_with_reason) flag("dlq_without_reason", label);
    if (p.webhook_ids !== 1) flag("two_webhook_ids", `${label}: ${p.webhook_ids}`);
    if (p.positions !== 1) flag("two_positions", `${label}: ${p.positions}`);
  }
  let expected = 0;
  let dlqExpected = 0;
  accepted.forEach((a, seq) => {
    if (!a) return;
    for (const spec of subs.specs) {
      if (!matches(spec, a.type)) continue;
      expected += 1;
      if (spec.alwaysFails?.(seq)) dlqExpected += 1;
      if (!pairOf.has(`${spec.key}|${seq}`))
        flag("lost", `${spec.key} seq ${seq} (event ${a.eventId}): no delivery row`);
    }
  });

  // The receiver's record against the store.
  const okByWebhook = new Map<string, number>();
  const okAt = new Map<string, Receipt>();
  let duplicates = 0;
  let duplicatesAroundCrash = 0;
  const receiptsOf = new Map<string, Receipt[]>();
  for (const r of receiver.receipts) {
    if (!r.verified) flag("unverified_signature", `${r.key} ${r.webhookId}`);
    const k = `${r.key}|${r.webhookId}`;
    const w = webhookOf.get(k);
    if (!w || w.seq !== r.seq) {
      flag(
        "receipt_webhook_id_mismatch",
        `${r.key} ${r.webhookId} seq ${r.seq} (store: ${w ? `seq ${w.seq}` : "no such webhook-id"})`,
      );
    }
    // A copy after a 2xx was already given for this webhook-id is a duplicate.
    const firstOk = okAt.get(k);
    if (firstOk !== undefined) {
      duplicates += 1;
      if (input.crashWindows.some(([from, to]) => firstOk.answeredAt >= from && firstOk.answeredAt <= to)) {
        duplicatesAroundCrash += 1;
      }
      const list = examples.duplicates ?? [];
      examples.duplicates = list;
      if (list.length < 20) {
        list.push(
          `${k}: received at ${firstOk.at}, 2xx (${firstOk.answer}) after ${firstOk.answeredAt - firstOk.at} ms; again ${r.at - firstOk.answeredAt} ms after the 2xx, from pid ${receiver.pidOf(r.conn) ?? "?"} (first from ${receiver.pidOf(firstOk.conn) ?? "?"})`,
        );
      }
    }
    if (r.okSent) {
      okByWebhook.set(k, (okByWebhook.get(k) ?? 0) + 1);
      if (firstOk === undefined) okAt.set(k, r);
    }
    let list = receiptsOf.get(r.key);
    if (!list) {
      list = [];
      receiptsOf.set(r.key, list);
    }
    list.push(r);
  }
  for (const [k, p] of pairOf) {
    if (p.delivered === 1 && !(okByWebhook.get(`${k.split("|")[0]}|${p.webhook_id}`) ?? 0)) {
      flag("delivered_without_2xx_receipt", `${k} ${p.webhook_id}`);
    }
  }

  // Ordered queues: first receipts in position order, positions in acceptance (seq) order, cursor at the end.
  const cursors = await db.query<{
    subscription_id: string;
    last_delivered_event_id: string | number | null;
  }>(
    `SELECT subscription_id, last_delivered_event_id FROM subscriptions WHERE tenant_id = $1 AND ordering = 'ordered'`,
    [TENANT],
  );
  for (const spec of subs.specs.filter((s) => s.ordering === "ordered")) {
    const seen = new Set<string>();
    let last = -1;
    for (const r of receiptsOf.get(spec.key) ?? []) {
      if (seen.has(r.webhookId)) continue;
      seen.add(r.webhookId);
      const w = webhookOf.get(`${spec.key}|${r.webhookId}`);
      if (!w) continue;
      if (w.position < last)
        flag(
          "reordered",
          `${spec.key}: position ${w.position} (seq ${w.seq}) first received after position ${last}`,
        );
      last = Math.max(last, w.position);
    }
    let lastPos = -1;
    let maxTerminalEvent = 0;
    accepted.forEach((a, seq) => {
      const p = pairOf.get(`${spec.key}|${seq}`);
      if (!a || !p) return;
      const pos = Number(p.position);
      if (pos <= lastPos)
        flag("positions_not_in_acceptance_order", `${spec.key} seq ${seq}: position ${pos} after ${lastPos}`);
      lastPos = Math.max(lastPos, pos);
      if (p.delivered + p.dlq > 0) maxTerminalEvent = Math.max(maxTerminalEvent, Number(p.event_id));
    });
    const cursor = cursors.rows.find(
      (c) => c.subscription_id === subs.idOf.get(spec.key),
    )?.last_delivered_event_id;
    if (maxTerminalEvent > 0 && Number(cursor) !== maxTerminalEvent) {
      flag("ordered_cursor_wrong", `${spec.key}: cursor ${cursor}, last event delivered ${maxTerminalEvent}`);
    }
  }

  // Nothing left in flight or pending, and the counters equal the rows.
  const left = await db.query<{ in_flight: number; pending: number }>(
    `SELECT (count(*) FILTER (WHERE status = 'in_flight'))::int AS in_flight,
            (count(*) FILTER (WHERE status = 'pending'))::int AS pending FROM deliveries`,
  );
  const l = left.rows[0] ?? { in_flight: 0, pending: 0 };
  if (l.in_flight > 0) flag("in_flight_at_end", `${l.in_flight} rows in flight`, l.in_flight);
  if (l.pending > 0) flag("pending_at_end", `${l.pending} rows pending`, l.pending);
  for (const m of await counterMismatches(db)) flag("counter_mismatch", m);

  // The audit log: pauses and resumes alternate from `active` and end at the current state; every automatic
  // pause the operator met has its row.
  const audit = await db.query<{
    subscription_id: string;
    actor: string;
    action: string;
    reason: string | null;
  }>(
    `SELECT subscription_id, actor, action, reason FROM audit_log
     WHERE tenant_id = $1 AND action IN ('subscription.paused', 'subscription.resumed') ORDER BY audit_id`,
    [TENANT],
  );
  const state = await db.query<{ subscription_id: string; status: string }>(
    `SELECT subscription_id, status FROM subscriptions WHERE tenant_id = $1`,
    [TENANT],
  );
  let autoPauses = 0;
  for (const s of state.rows) {
    const key = subs.keyOf.get(s.subscription_id) ?? s.subscription_id;
    let status = "active";
    let system = 0;
    for (const a of audit.rows.filter((x) => x.subscription_id === s.subscription_id)) {
      const to = a.action === "subscription.paused" ? "paused" : "active";
      if (to === status) flag("audit_sequence_broken", `${key}: ${a.action} by ${a.actor} while ${status}`);
      status = to;
      if (to === "paused" && a.actor === "system") system += 1;
    }
    autoPauses += system;
    if (status !== s.status)
      flag("audit_sequence_broken", `${key}: audit ends ${status}, subscription is ${s.status}`);
    const met = input.resumedAutoPauses.get(s.subscription_id) ?? 0;
    if (system < met)
      flag("auto_pause_without_audit", `${key}: ${met} automatic pauses met, ${system} audit rows`);
  }

  // A stalled dispatcher, once continued, sends only what it claimed after it continued.
  let stalledSends = 0;
  for (const st of input.stalls) {
    const late = receiver.receipts.filter((r) => r.at >= st.contAt && receiver.pidOf(r.conn) === st.pid);
    stalledSends += late.length;
    if (late.length === 0) continue;
    const claims = await db.query<{ webhook_id: string; subscription_id: string; at_ms: number }>(
      `SELECT webhook_id, subscription_id, (extract(epoch FROM attempted_at) * 1000)::float8 AS at_ms
       FROM deliveries WHERE webhook_id = ANY($1::text[]) AND attempted_at IS NOT NULL`,
      [[...new Set(late.map((r) => r.webhookId))]],
    );
    for (const r of late) {
      const fresh = claims.rows.some(
        (c) =>
          c.webhook_id === r.webhookId &&
          subs.keyOf.get(c.subscription_id) === r.key &&
          c.at_ms >= st.contAt - 5,
      );
      if (!fresh)
        flag(
          "sent_after_lease_lost",
          `${st.name} (pid ${st.pid}) sent ${r.key} ${r.webhookId} ${r.at - st.contAt} ms after SIGCONT with no claim since`,
        );
    }
  }

  const outcomes = await db.query<{ outcome: string; n: number }>(
    `SELECT status || COALESCE('/' || error_kind, '') AS outcome, count(*)::int AS n
     FROM deliveries GROUP BY 1 ORDER BY 2 DESC`,
  );
  return {
    attemptsByOutcome: Object.fromEntries(outcomes.rows.map((o) => [o.outcome, o.n])),
    accepted: acceptedCount,
    eventsInStore: events.rows.length,
    expectedDeliveries: expected,
    delivered,
    dlq,
    dlqExpected,
    receipts: receiver.receipts.length,
    attempts,
    duplicates,
    duplicateRate: delivered > 0 ? duplicates / delivered : 0,
    duplicatesAroundCrash,
    stalledSends,
    connections: receiver.connections,
    unattributedConnections: receiver.unattributedConnections,
    autoPauses,
    violations,
    examples,
  };
}

/** Subscriptions whose maintained counters differ from their rows (one statement: one snapshot). */
export async function counterMismatches(db: Queryable): Promise<string[]> {
  const res = await db.query<{
    subscription_id: string;
    pending_count: number;
    dlq_count: number;
    real_pending: number;
    real_dlq: number;
  }>(
    `SELECT s.subscription_id, s.pending_count, s.dlq_count,
            (SELECT count(*) FROM deliveries d WHERE d.subscription_id = s.subscription_id
               AND d.status IN ('pending', 'in_flight'))::int AS real_pending,
            (SELECT count(*) FROM deliveries d WHERE d.subscription_id = s.subscription_id AND d.status = 'dlq')::int AS real_dlq
     FROM subscriptions s`,
  );
  return res.rows
    .filter((r) => r.pending_count !== r.real_pending || r.dlq_count !== r.real_dlq)
    .map(
      (r) =>
        `${r.subscription_id}: pending_count ${r.pending_count} (rows ${r.real_pending}), dlq_count ${r.dlq_count} (rows ${r.real_dlq})`,
    );
}

/** Violations found while a scenario runs, counted by kind, with up to 20 examples of each. */
export function violationLog(kinds: readonly string[]) {
  const counts: Record<string, number> = Object.fromEntries(kinds.map((k) => [k, 0]));
  const examples: Record<string, string[]> = {};
  const note = (v: string, example: string) => {
    counts[v] = (counts[v] ?? 0) + 1;
    const list = examples[v] ?? [];
    examples[v] = list;
    if (list.length < 20) list.push(example);
  };
  return { counts, examples, note };
}
