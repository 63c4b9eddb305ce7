import fs from "node:fs";
import cliProgress from "cli-progress";
import { type Command, InvalidArgumentError, Option } from "commander";
import { canonicalEventId, MAX_JOB_ITEMS, parseIdsFile } from "../domain/retrigger.ts";
import { call, resolveClient } from "./client.ts";
import { type ClientFlags, clientCommand, fail, output } from "./common.ts";
import { printTable } from "./output.ts";

interface JobOut {
  job_id: number;
  tenant_id: string;
  event_type: string;
  subscription_id: string | null;
  status: string;
  total: number;
  completed: number;
  sent: number;
  skipped: number;
  failed: number;
  pending: number;
  interrupted: boolean;
  lease_owner: string | null;
  next_chunk_at: string | null;
  last_error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

interface PreviewOut {
  total: number;
  would_trigger: number;
  would_skip: number;
  would_fail: number;
  plan: {
    chunks: number;
    batch_size: number;
    delay_ms: number;
    chunk_budget_ms: number;
    pace_items_per_second: number;
    estimated_duration_ms: number;
  };
  items: Array<{
    requested_id: string;
    source_event_id: number | null;
    outcome: "WOULD_TRIGGER" | "WOULD_SKIP" | "WOULD_FAIL";
    reason: string | null;
    detail: string | null;
  }>;
}

interface ItemOut {
  ordinal: number;
  requested_id: string;
  outcome: string;
  reason: string | null;
  detail: string | null;
  new_event_id: number | null;
}

/** Exit status of `--follow` when the job stopped without completing (cancelled, failed, interrupted). */
export const EXIT_NOT_COMPLETED = 3;
/** Rows of a dry run's table (the rest are counted; --json lists all). */
const PREVIEW_ROWS = 50;
/** Pending IDs printed when a followed job stops early (the rest: `herald retrigger items`). */
const PENDING_SHOWN = 1000;
const POLL_MS = 500;

const client = (o: ClientFlags) => resolveClient({ url: o.apiUrl, token: o.token });
const jobPath = (id: string) => `/v1/retriggers/${encodeURIComponent(id)}`;
const w = (s: string) => process.stdout.write(`${s}\n`);

function integer(flag: string) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v.trim()))
      throw new InvalidArgumentError(`${flag} must be a whole number; got "${v}"`);
    return Number(v);
  };
}

function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = s / 60;
  return m < 120 ? `${m.toFixed(1)} min` : `${(m / 60).toFixed(1)} h`;
}

interface CreateFlags extends ClientFlags {
  tenant?: string;
  eventType: string;
  subscription?: string;
  idsFile?: string;
  idKind: "aggregate" | "event";
  aggregateIds?: string;
  eventIds?: string;
  after?: string;
  before?: string;
  batchSize?: number;
  delayMs?: number;
  chunkBudgetMs?: number;
  skipDeliveredAfter?: string;
  dryRun?: boolean;
  follow?: boolean;
  timeout: number;
}

/** The selection part of the request body, from the flags (exactly one kind). */
function selection(o: CreateFlags): Record<string, unknown> {
  const given = [o.idsFile, o.aggregateIds, o.eventIds, o.after ?? o.before].filter((x) => x !== undefined);
  if (given.length !== 1) {
    throw new Error(
      "give one selection: --ids-file (with --id-kind), --aggregate-ids, --event-ids, or --after/--before",
    );
  }
  if (o.idsFile !== undefined) {
    const parsed = parseIdsFile(fs.readFileSync(o.idsFile, "utf8"), o.idKind);
    if (parsed.errors.length > 0) {
      const shown = parsed.errors.slice(0, 10).map((e) => `  ${e.message}`);
      const more = parsed.errors.length > 10 ? [`  ... and ${parsed.errors.length - 10} more`] : [];
      throw new Error(`${o.idsFile} has invalid lines:\n${[...shown, ...more].join("\n")}`);
    }
    if (parsed.ids.length === 0) throw new Error(`${o.idsFile} lists no IDs`);
    if (parsed.ids.length > MAX_JOB_ITEMS) {
      throw new Error(`${o.idsFile} lists ${parsed.ids.length} IDs; a job holds at most ${MAX_JOB_ITEMS}`);
    }
    if (parsed.duplicates > 0) process.stderr.write(`${parsed.duplicates} duplicate ID(s) collapsed\n`);
    return o.idKind === "event" ? { event_ids: parsed.ids.map(Number) } : { aggregate_ids: parsed.ids };
  }
  if (o.aggregateIds !== undefined) {
    return {
      aggregate_ids: o.aggregateIds
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x !== ""),
    };
  }
  if (o.eventIds !== undefined) {
    const ids = o.eventIds
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x !== "");
    const bad = ids.find((x) => canonicalEventId(x) === null);
    if (bad !== undefined) throw new Error(`--event-ids: "${bad}" is not an event ID (a positive integer)`);
    return { event_ids: ids.map(Number) };
  }
  return {
    ...(o.after ? { occurred_after: o.after } : {}),
    ...(o.before ? { occurred_before: o.before } : {}),
  };
}

function printPreview(p: PreviewOut): void {
  const rank = { WOULD_FAIL: 0, WOULD_SKIP: 1, WOULD_TRIGGER: 2 } as const;
  const rows = [...p.items].sort((a, b) => rank[a.outcome] - rank[b.outcome]).slice(0, PREVIEW_ROWS);
  printTable(
    rows.map((i) => ({
      id: i.requested_id,
      outcome: i.outcome,
      event: i.source_event_id,
      why: i.reason ? `${i.reason}: ${i.detail ?? ""}` : (i.detail ?? ""),
    })),
  );
  if (p.items.length > rows.length) w(`... and ${p.items.length - rows.length} more rows (--json lists all)`);
  w("");
  w(
    `${p.total} IDs: ${p.would_trigger} would trigger, ${p.would_skip} would skip, ${p.would_fail} would fail`,
  );
  const pl = p.plan;
  w(
    `plan: ${pl.chunks} chunk(s) of up to ${pl.batch_size}, ${pl.delay_ms} ms between chunks, ` +
      `time budget ${pl.chunk_budget_ms} ms per chunk; about ${duration(pl.estimated_duration_ms)} ` +
      `(~${pl.pace_items_per_second} items/s)`,
  );
  w("dry run: nothing was created or sent");
}

function printJob(j: JobOut): void {
  w(
    `job ${j.job_id}: ${j.status}${j.interrupted ? " (interrupted)" : ""} — ${j.completed} of ${j.total} done`,
  );
  w(`  sent ${j.sent}, skipped ${j.skipped}, failed ${j.failed}, pending ${j.pending}`);
  w(`  tenant ${j.tenant_id}, ${j.event_type}${j.subscription_id ? `, only ${j.subscription_id}` : ""}`);
  if (j.last_error) w(`  last error: ${j.last_error}`);
}

async function pendingIds(c: { url: string; token: string }, id: string, max: number): Promise<string[]> {
  const out: string[] = [];
  let cursor: number | null = null;
  for (let page = 0; page < Math.ceil(max / 1000) + 1 && out.length < max; page++) {
    const q = new URLSearchParams({ outcome: "pending", limit: "1000" });
    if (cursor !== null) q.set("cursor", String(cursor));
    const r = await call<{ items: ItemOut[]; next_cursor: number | null }>(
      c,
      "GET",
      `${jobPath(id)}/items?${q}`,
    );
    out.push(...r.items.map((i) => i.requested_id));
    cursor = r.next_cursor;
    if (cursor === null) break;
  }
  return out.slice(0, max);
}

const STOPPED = new Set(["completed", "cancelled", "failed"]);

/**
 * Follows a job until it stops (completed, cancelled, failed) or is interrupted (its owner vanished, or
 * no dispatcher takes it up), with a progress bar; then, if it did not complete, prints the pending IDs
 * and the resume command and exits with EXIT_NOT_COMPLETED.
 */
async function follow(o: ClientFlags & { timeout: number }, id: string): Promise<void> {
  const c = client(o);
  const deadline = Date.now() + o.timeout * 1000;
  let job = await call<JobOut>(c, "GET", jobPath(id));
  const bar = o.json
    ? null
    : new cliProgress.SingleBar(
        {
          format: `job ${job.job_id} [{bar}] {value}/{total} | sent {sent} skipped {skipped} failed {failed}`,
          noTTYOutput: true,
          notTTYSchedule: 2000,
          hideCursor: null,
        },
        cliProgress.Presets.shades_classic,
      );
  const payload = (j: JobOut) => ({ sent: j.sent, skipped: j.skipped, failed: j.failed });
  bar?.start(job.total, job.completed, payload(job));
  const maxPolls = Math.ceil((o.timeout * 1000) / POLL_MS) + 1;
  for (
    let i = 0;
    i < maxPolls && !STOPPED.has(job.status) && !job.interrupted && Date.now() < deadline;
    i++
  ) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    job = await call<JobOut>(c, "GET", jobPath(id));
    bar?.update(job.completed, payload(job));
  }
  bar?.stop();
  if (job.status === "completed") {
    output(o, job, () => printJob(job));
    return;
  }
  const pending = await pendingIds(c, id, PENDING_SHOWN);
  const why = STOPPED.has(job.status)
    ? job.status
    : job.interrupted
      ? "interrupted (its dispatcher stopped without finishing; a live dispatcher takes it up again after the lease expires)"
      : `still ${job.status} after --timeout ${o.timeout} s`;
  output(o, { ...job, pending_ids: pending }, () => {
    printJob(job);
    w(`stopped without completing: ${why}`);
    w(
      `pending IDs (${job.pending}${job.pending > pending.length ? `, first ${pending.length} shown` : ""}):`,
    );
    for (const p of pending) w(`  ${p}`);
    if (job.status !== "cancelled") w(`resume with: herald retrigger resume ${job.job_id}`);
  });
  process.exit(EXIT_NOT_COMPLETED);
}

const timeoutOption = () =>
  new Option("--timeout <seconds>", "with --follow: stop following after this long")
    .argParser(integer("--timeout"))
    .default(86_400);

/** `herald retrigger create|status|items|resume|cancel|list`: durable bulk re-trigger jobs. */
export function registerRetriggerCommands(program: Command): void {
  const rt = program
    .command("retrigger")
    .description("durable bulk re-trigger jobs (dry run, chunks, resume)");

  clientCommand(
    rt.command("create").description("re-send events as new events, in chunks; --dry-run previews per ID"),
  )
    .requiredOption("--event-type <type>", "the event type to re-send")
    .option("--tenant <tenant>", "the tenant (admin token only)")
    .option("--subscription <id>", "only to this subscription (default: every matching one)")
    .option(
      "--ids-file <file>",
      "IDs, one per line (blank lines and # comments ignored, duplicates collapsed)",
    )
    .addOption(
      new Option("--id-kind <kind>", "what the IDs in --ids-file are")
        .choices(["aggregate", "event"])
        .default("aggregate"),
    )
    .option("--aggregate-ids <ids>", "comma-separated aggregate IDs (the latest event of the type for each)")
    .option("--event-ids <ids>", "comma-separated event IDs")
    .option("--after <time>", "window: events that occurred at or after (ISO 8601)")
    .option("--before <time>", "window: events that occurred before (ISO 8601)")
    .option("--batch-size <n>", "items per chunk (1-1000, default 50)", integer("--batch-size"))
    .option("--delay-ms <n>", "pause between chunks (0-3600000, default 0)", integer("--delay-ms"))
    .option(
      "--chunk-budget-ms <n>",
      "time budget of one chunk (1000-600000, default 30000)",
      integer("--chunk-budget-ms"),
    )
    .option(
      "--skip-delivered-after <time>",
      "skip items already delivered to the subscription since (ISO 8601)",
    )
    .option("--dry-run", "show what would happen per ID; create and send nothing")
    .option("--follow", "show progress until the job stops")
    .addOption(timeoutOption())
    .action(async (o: CreateFlags) => {
      try {
        const body = {
          event_type: o.eventType,
          ...(o.tenant ? { tenant_id: o.tenant } : {}),
          ...(o.subscription ? { subscription_id: o.subscription } : {}),
          ...selection(o),
          ...(o.batchSize !== undefined ? { batch_size: o.batchSize } : {}),
          ...(o.delayMs !== undefined ? { delay_ms: o.delayMs } : {}),
          ...(o.chunkBudgetMs !== undefined ? { chunk_budget_ms: o.chunkBudgetMs } : {}),
          ...(o.skipDeliveredAfter ? { skip_delivered_after: o.skipDeliveredAfter } : {}),
          ...(o.dryRun ? { dry_run: true } : {}),
        };
        if (o.dryRun) {
          const p = await call<PreviewOut>(client(o), "POST", "/v1/retriggers", body);
          output(o, p, () => printPreview(p));
          return;
        }
        const job = await call<JobOut>(client(o), "POST", "/v1/retriggers", body);
        if (o.follow) {
          if (!o.json) w(`created re-trigger job ${job.job_id} (${job.total} items)`);
          await follow(o, String(job.job_id));
          return;
        }
        output(o, job, () => {
          printJob(job);
          w(`follow it with: herald retrigger status ${job.job_id} --follow`);
        });
      } catch (err) {
        fail(err);
      }
    });

  clientCommand(rt.command("status <job>").description("a job's progress; --follow shows a progress bar"))
    .option("--follow", "show progress until the job stops")
    .addOption(timeoutOption())
    .action(async (id: string, o: ClientFlags & { follow?: boolean; timeout: number }) => {
      try {
        if (o.follow) {
          await follow(o, id);
          return;
        }
        const job = await call<JobOut>(client(o), "GET", jobPath(id));
        output(o, job, () => printJob(job));
      } catch (err) {
        fail(err);
      }
    });

  clientCommand(rt.command("items <job>").description("a job's items and their outcomes"))
    .addOption(
      new Option("--outcome <outcome>", "only these").choices(["pending", "sent", "skipped", "failed"]),
    )
    .option("--limit <n>", "at most this many rows", integer("--limit"))
    .action(async (id: string, o: ClientFlags & { outcome?: string; limit?: number }) => {
      try {
        const c = client(o);
        const max = Math.min(o.limit ?? MAX_JOB_ITEMS, MAX_JOB_ITEMS);
        const items: ItemOut[] = [];
        let cursor: number | null = null;
        for (let page = 0; page <= Math.ceil(max / 1000) && items.length < max; page++) {
          const q = new URLSearchParams({ limit: String(Math.min(1000, max - items.length)) });
          if (o.outcome) q.set("outcome", o.outcome);
          if (cursor !== null) q.set("cursor", String(cursor));
          const r = await call<{ items: ItemOut[]; next_cursor: number | null }>(
            c,
            "GET",
            `${jobPath(id)}/items?${q}`,
          );
          items.push(...r.items);
          cursor = r.next_cursor;
          if (cursor === null) break;
        }
        output(o, { items }, () =>
          printTable(
            items.map((i) => ({
              "#": i.ordinal,
              id: i.requested_id,
              outcome: i.outcome,
              new_event: i.new_event_id,
              why: i.reason ? `${i.reason}: ${i.detail ?? ""}` : (i.detail ?? ""),
            })),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });

  for (const verb of ["resume", "cancel"] as const) {
    const cmd = clientCommand(
      rt
        .command(`${verb} <job>`)
        .description(
          verb === "resume"
            ? "run a job's pending items again now (interrupted or failed jobs)"
            : "stop a job; its pending items are not sent",
        ),
    ).option("--reason <reason>", "why (kept in the audit log)");
    if (verb === "resume")
      cmd.option("--follow", "show progress until the job stops").addOption(timeoutOption());
    cmd.action(
      async (id: string, o: ClientFlags & { reason?: string; follow?: boolean; timeout: number }) => {
        try {
          const job = await call<JobOut>(client(o), "POST", `${jobPath(id)}/${verb}`, {
            ...(o.reason ? { reason: o.reason } : {}),
          });
          if (verb === "resume" && o.follow) {
            await follow(o, id);
            return;
          }
          output(o, job, () => printJob(job));
        } catch (err) {
          fail(err);
        }
      },
    );
  }

  clientCommand(rt.command("list").description("re-trigger jobs, newest first"))
    .option("--limit <n>", "rows", integer("--limit"), 50)
    .action(async (o: ClientFlags & { limit: number }) => {
      try {
        const r = await call<{ items: JobOut[] }>(client(o), "GET", `/v1/retriggers?limit=${o.limit}`);
        output(o, r, () =>
          printTable(
            r.items.map((j) => ({
              job: j.job_id,
              tenant: j.tenant_id,
              type: j.event_type,
              status: j.interrupted ? `${j.status} (interrupted)` : j.status,
              done: `${j.completed}/${j.total}`,
              sent: j.sent,
              skipped: j.skipped,
              failed: j.failed,
              created: j.created_at,
            })),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });
}
