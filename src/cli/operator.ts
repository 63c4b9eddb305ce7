import type { Command } from "commander";
import { call, resolveClient } from "./client.ts";
import { type ClientFlags, clientCommand, fail, output } from "./common.ts";
import { printTable } from "./output.ts";

interface SubOut {
  subscription_id: string;
  status: string;
  pause_reason: string | null;
  pending_count: number;
  dlq_count: number;
}

interface Attempt {
  delivery_id: number;
  attempt_number: number;
  status: string;
  attempted_at: string | null;
  response_status: number | null;
  error_kind: string | null;
  error_detail: string | null;
}

interface HeadOut {
  subscription_id: string;
  status: string;
  pause_reason: string | null;
  head: {
    event: { event_id: number; event_type: string; aggregate_id: string | null; payload: unknown };
    attempts: Attempt[];
  } | null;
  counts: Record<string, number>;
  diagnosis: { branch: string; summary: string; actions: string[] };
}

const client = (o: ClientFlags) => resolveClient({ url: o.apiUrl, token: o.token });
const sub = (id: string) => `/v1/subscriptions/${encodeURIComponent(id)}`;

/** Operator verbs: pause, resume, head, drop-head, replay, deliveries, audit. Each talks to the API. */
export function registerOperatorCommands(program: Command): void {
  for (const verb of ["pause", "resume"] as const) {
    clientCommand(program.command(`${verb} <subscription>`).description(`${verb} a subscription (audited)`))
      .option("--reason <reason>", "why (kept in the audit log)")
      .action(async (id: string, o: ClientFlags & { reason?: string }) => {
        try {
          const r = await call<SubOut>(client(o), "PATCH", sub(id), {
            status: verb === "pause" ? "paused" : "active",
            ...(o.reason ? { reason: o.reason } : {}),
          });
          output(o, r, () =>
            process.stdout.write(
              `${r.subscription_id}: ${r.status}${r.pause_reason ? ` (${r.pause_reason})` : ""}\n`,
            ),
          );
        } catch (err) {
          fail(err);
        }
      });
  }

  clientCommand(
    program
      .command("head <subscription>")
      .description("show the head of a queue, its attempts and the diagnosis"),
  ).action(async (id: string, o: ClientFlags) => {
    try {
      const r = await call<HeadOut>(client(o), "GET", `${sub(id)}/head`);
      output(o, r, () => {
        const w = (s: string) => process.stdout.write(`${s}\n`);
        w(`subscription ${r.subscription_id}: ${r.status}${r.pause_reason ? ` (${r.pause_reason})` : ""}`);
        w(
          `pending ${r.counts.pending}/${r.counts.pending_ceiling}, in flight ${r.counts.in_flight}, ` +
            `dlq ${r.counts.dlq}/${r.counts.dlq_ceiling}, failed in the last hour ${r.counts.failed_last_hour}`,
        );
        if (r.head) {
          const e = r.head.event;
          w(`head: event ${e.event_id} ${e.event_type}${e.aggregate_id ? ` (${e.aggregate_id})` : ""}`);
          w(`payload: ${JSON.stringify(e.payload)}`);
          printTable(
            r.head.attempts.map((a) => ({
              attempt: a.attempt_number,
              status: a.status,
              at: a.attempted_at,
              http: a.response_status,
              kind: a.error_kind,
              detail: a.error_detail,
            })),
          );
        } else {
          w("head: (queue empty)");
        }
        w(`diagnosis: ${r.diagnosis.branch} — ${r.diagnosis.summary}`);
        for (const a of r.diagnosis.actions) w(`  - ${a}`);
      });
    } catch (err) {
      fail(err);
    }
  });

  clientCommand(
    program.command("drop-head <subscription>").description("move the head of an ordered queue to the DLQ"),
  )
    .requiredOption("--reason <reason>", "why (kept on the DLQ row and in the audit log)")
    .option("--event-id <id>", "only if the head is still this event (safe to retry)")
    .action(async (id: string, o: ClientFlags & { reason: string; eventId?: string }) => {
      try {
        const r = await call<{
          event_id: number;
          moved_to_dlq: number;
          last_delivered_event_id: number | null;
        }>(client(o), "POST", `${sub(id)}/head/drop`, {
          reason: o.reason,
          ...(o.eventId ? { event_id: Number(o.eventId) } : {}),
        });
        output(o, r, () =>
          process.stdout.write(
            `dropped event ${r.event_id} (${r.moved_to_dlq} row(s) to the DLQ); cursor at ${r.last_delivered_event_id}\n`,
          ),
        );
      } catch (err) {
        fail(err);
      }
    });

  clientCommand(
    program.command("replay [delivery]").description("replay one delivery, or with --dlq a batch from a DLQ"),
  )
    .option("--dlq <subscription>", "replay DLQ deliveries of this subscription")
    .option("--since <time>", "with --dlq: only rows that entered the DLQ since (ISO 8601)")
    .option("--until <time>", "with --dlq: only rows that entered the DLQ before (ISO 8601)")
    .option("--error-kind <kind>", "with --dlq: only this error kind")
    .option("--event-ids <ids>", "with --dlq: only these event ids (comma-separated)")
    .action(
      async (
        delivery: string | undefined,
        o: ClientFlags & {
          dlq?: string;
          since?: string;
          until?: string;
          errorKind?: string;
          eventIds?: string;
        },
      ) => {
        try {
          if (o.dlq) {
            const r = await call<{ queued: number; more: boolean }>(
              client(o),
              "POST",
              `${sub(o.dlq)}/dlq/replay`,
              {
                ...(o.since ? { since: o.since } : {}),
                ...(o.until ? { until: o.until } : {}),
                ...(o.errorKind ? { error_kind: o.errorKind } : {}),
                ...(o.eventIds ? { event_ids: o.eventIds.split(",").map((x) => Number(x.trim())) } : {}),
              },
            );
            output(o, r, () =>
              process.stdout.write(
                `queued ${r.queued} replay(s)${r.more ? " (more match: run it again)" : ""}\n`,
              ),
            );
            return;
          }
          if (!delivery) throw new Error("give a delivery id, or --dlq <subscription>");
          const r = await call<{ delivery_id: number; webhook_id: string }>(
            client(o),
            "POST",
            `/v1/deliveries/${encodeURIComponent(delivery)}/replay`,
          );
          output(o, r, () =>
            process.stdout.write(`queued delivery ${r.delivery_id} (webhook-id ${r.webhook_id})\n`),
          );
        } catch (err) {
          fail(err);
        }
      },
    );

  clientCommand(program.command("deliveries").description("delivery rows, newest first (the error log)"))
    .option("--subscription <id>")
    .option("--event <id>")
    .option("--status <status>", "pending, in_flight, delivered, failed or dlq")
    .option("--error-kind <kind>")
    .option("--limit <n>", "rows", "50")
    .action(
      async (
        o: ClientFlags & {
          subscription?: string;
          event?: string;
          status?: string;
          errorKind?: string;
          limit: string;
        },
      ) => {
        try {
          const q = new URLSearchParams({ limit: o.limit });
          if (o.subscription) q.set("subscription_id", o.subscription);
          if (o.event) q.set("event_id", o.event);
          if (o.status) q.set("status", o.status);
          if (o.errorKind) q.set("error_kind", o.errorKind);
          const r = await call<{ items: Array<Attempt & { event_id: number; subscription_id: string }> }>(
            client(o),
            "GET",
            `/v1/deliveries?${q}`,
          );
          output(o, r, () =>
            printTable(
              r.items.map((d) => ({
                id: d.delivery_id,
                sub: d.subscription_id,
                event: d.event_id,
                attempt: d.attempt_number,
                status: d.status,
                http: d.response_status,
                kind: d.error_kind,
                detail: d.error_detail,
              })),
            ),
          );
        } catch (err) {
          fail(err);
        }
      },
    );

  clientCommand(program.command("audit").description("audit rows, newest first"))
    .option("--subscription <id>")
    .option("--job <id>")
    .option("--limit <n>", "rows", "50")
    .action(async (o: ClientFlags & { subscription?: string; job?: string; limit: string }) => {
      try {
        const q = new URLSearchParams({ limit: o.limit });
        if (o.subscription) q.set("subscription_id", o.subscription);
        if (o.job) q.set("job_id", o.job);
        const r = await call<{
          items: Array<{
            at: string;
            actor: string;
            action: string;
            subscription_id: string | null;
            reason: string | null;
            before: unknown;
            after: unknown;
          }>;
        }>(client(o), "GET", `/v1/audit?${q}`);
        output(o, r, () =>
          printTable(
            r.items.map((a) => ({
              at: a.at,
              actor: a.actor,
              action: a.action,
              target: a.subscription_id,
              reason: a.reason,
              change: a.after,
            })),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });
}
