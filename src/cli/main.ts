import { Command, Option } from "commander";
import { loadSettings } from "../config.ts";
import { createLogger } from "../log.ts";
import { tuneEmbeddedProcess } from "../runtime/embedded-process.ts";
import { startHerald, stopOnSignals } from "../runtime/herald.ts";
import { migrate } from "../store/migrate.ts";
import { openStore } from "../store/open.ts";
import { call, resolveClient } from "./client.ts";
import { type ClientFlags, clientCommand, fail, output } from "./common.ts";
import { registerOperatorCommands } from "./operator.ts";
import { printTable } from "./output.ts";
import { registerRetriggerCommands } from "./retrigger.ts";
import { registerTenantCommands } from "./tenants.ts";

const program = new Command("herald").description("Herald: outbound webhook delivery").showHelpAfterError();

async function serve(roles: { api: boolean; dispatcher: boolean }, opts: { migrate: boolean }) {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  if (settings.databaseUrl === null) {
    log.info(
      { v8_flags: tuneEmbeddedProcess(settings), wasm_optimize: settings.embeddedWasmOptimize },
      "embedded store: V8 tuned for one process",
    );
  }
  const proc = await startHerald(settings, { roles, migrate: opts.migrate, logger: log });
  stopOnSignals(proc, log);
}

const noMigrate = new Option("--no-migrate", "do not apply the schema at start");

program
  .command("start")
  .description("run the API, the panel, the dispatcher and the scheduler in one process")
  .addOption(noMigrate)
  .action((o: { migrate: boolean }) => serve({ api: true, dispatcher: true }, o).catch(fail));

program
  .command("api")
  .description("run the API role only (scale-out)")
  .addOption(noMigrate)
  .action((o: { migrate: boolean }) => serve({ api: true, dispatcher: false }, o).catch(fail));

program
  .command("dispatcher")
  .description("run the dispatcher and the scheduler only (scale-out)")
  .addOption(noMigrate)
  .action((o: { migrate: boolean }) => serve({ api: false, dispatcher: true }, o).catch(fail));

program
  .command("migrate")
  .description("apply the schema and exit")
  .option("--json", "machine-readable output")
  .action(async (o: { json?: boolean }) => {
    try {
      const settings = loadSettings();
      const db = await openStore(settings, "herald-migrate");
      try {
        const r = await migrate(db);
        if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else
          process.stdout.write(
            r.applied.length
              ? `applied ${r.applied.join(", ")}\n`
              : `schema up to date (version ${r.current})\n`,
          );
      } finally {
        await db.close();
      }
    } catch (err) {
      fail(err);
    }
  });

interface SubscriptionOut {
  subscription_id: string;
  tenant_id: string;
  url: string;
  ordering: string;
  status: string;
  pause_reason: string | null;
  pending_count: number;
  pending_ceiling: number;
  dlq_count: number;
  dlq_ceiling: number;
  last_delivered_event_id: number | null;
}

const subs = program.command("subscriptions").description("manage subscriptions");
clientCommand(subs.command("list").description("list subscriptions"))
  .option("--tenant <tenant>", "only this tenant")
  .option("--status <status>", "active or paused")
  .action(async (o: ClientFlags & { tenant?: string; status?: string }) => {
    try {
      const c = resolveClient({ url: o.apiUrl, token: o.token });
      const q = new URLSearchParams();
      if (o.tenant) q.set("tenant_id", o.tenant);
      if (o.status) q.set("status", o.status);
      const r = await call<{ items: SubscriptionOut[] }>(c, "GET", `/v1/subscriptions?${q}`);
      output(o, r, () =>
        printTable(
          r.items.map((s) => ({
            id: s.subscription_id,
            tenant: s.tenant_id,
            status: s.pause_reason ? `${s.status} (${s.pause_reason})` : s.status,
            ordering: s.ordering,
            pending: `${s.pending_count}/${s.pending_ceiling}`,
            dlq: `${s.dlq_count}/${s.dlq_ceiling}`,
            cursor: s.last_delivered_event_id ?? "-",
            url: s.url,
          })),
        ),
      );
    } catch (err) {
      fail(err);
    }
  });

clientCommand(subs.command("get <id>").description("show one subscription")).action(
  async (id: string, o: ClientFlags) => {
    try {
      const r = await call<SubscriptionOut>(
        resolveClient({ url: o.apiUrl, token: o.token }),
        "GET",
        `/v1/subscriptions/${encodeURIComponent(id)}`,
      );
      output(o, r, () => printTable([r as unknown as Record<string, unknown>], true));
    } catch (err) {
      fail(err);
    }
  },
);

clientCommand(subs.command("create").description("create a subscription (prints the secret once)"))
  .requiredOption("--url <endpoint>", "the endpoint URL")
  .requiredOption("--event-types <types>", "comma-separated event types, or *")
  .option("--tenant <tenant>", "tenant (admin token only)")
  .option("--ordered", "deliver in order (default unordered)")
  .action(
    async (o: ClientFlags & { url: string; eventTypes: string; tenant?: string; ordered?: boolean }) => {
      try {
        const c = resolveClient({ url: o.apiUrl, token: o.token });
        const r = await call<SubscriptionOut & { secret: string }>(c, "POST", "/v1/subscriptions", {
          url: o.url,
          event_types: o.eventTypes.split(",").map((t) => t.trim()),
          ordering: o.ordered ? "ordered" : "unordered",
          ...(o.tenant ? { tenant_id: o.tenant } : {}),
        });
        output(o, r, () =>
          process.stdout.write(`created ${r.subscription_id}\nsecret (shown once): ${r.secret}\n`),
        );
      } catch (err) {
        fail(err);
      }
    },
  );

const tokens = program.command("tokens").description("manage API tokens");
clientCommand(tokens.command("create").description("admin only: make a tenant-scoped token"))
  .requiredOption("--tenant <tenant>", "the tenant the token is confined to")
  .option("--name <name>", "a label")
  .action(async (o: ClientFlags & { tenant: string; name?: string }) => {
    try {
      const r = await call<{ token_id: string; token: string }>(
        resolveClient({ url: o.apiUrl, token: o.token }),
        "POST",
        "/v1/tokens",
        {
          tenant_id: o.tenant,
          ...(o.name ? { name: o.name } : {}),
        },
      );
      output(o, r, () => process.stdout.write(`token ${r.token_id} (shown once): ${r.token}\n`));
    } catch (err) {
      fail(err);
    }
  });

registerOperatorCommands(program);
registerRetriggerCommands(program);
registerTenantCommands(program);

await program.parseAsync(process.argv);
