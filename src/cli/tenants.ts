import type { Command } from "commander";
import { ApiError, call, resolveClient } from "./client.ts";
import { type ClientFlags, clientCommand, fail, output } from "./common.ts";
import { printTable } from "./output.ts";

interface LimitsOut {
  tenant_id: string;
  max_subscriptions: number;
  source: "tenant" | "default";
  subscriptions: number;
}

const limitsPath = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}/limits`;

/** With --json, an error is printed as the API's `{error:{code,message}}` on stdout (exit 1); else as text. */
function failAs(o: ClientFlags, err: unknown): never {
  if (o.json) {
    const error =
      err instanceof ApiError
        ? { code: err.code, message: err.message }
        : { code: "cli_error", message: err instanceof Error ? err.message : String(err) };
    process.stdout.write(`${JSON.stringify({ error }, null, 2)}\n`);
    process.exit(1);
  }
  fail(err);
}

function show(o: ClientFlags, r: LimitsOut): void {
  output(o, r, () =>
    printTable(
      [
        {
          tenant: r.tenant_id,
          subscriptions: `${r.subscriptions}/${r.max_subscriptions}`,
          limit_from:
            r.source === "tenant"
              ? "tenant (set by the admin)"
              : "default (HERALD_MAX_SUBSCRIPTIONS_PER_TENANT)",
        },
      ],
      true,
    ),
  );
}

/** `herald tenants limits|set-limit`: a tenant's limits through the API. */
export function registerTenantCommands(program: Command): void {
  const tenants = program.command("tenants").description("per-tenant limits");

  clientCommand(
    tenants.command("limits <tenant>").description("show a tenant's limits and its subscriptions"),
  ).action(async (tenant: string, o: ClientFlags) => {
    try {
      show(
        o,
        await call<LimitsOut>(resolveClient({ url: o.apiUrl, token: o.token }), "GET", limitsPath(tenant)),
      );
    } catch (err) {
      failAs(o, err);
    }
  });

  clientCommand(
    tenants
      .command("set-limit <tenant>")
      .description("admin only: set how many subscriptions a tenant may have (audited)"),
  )
    .option("--max-subscriptions <n>", "the tenant's limit, 0..1000000")
    .option("--default", "remove the tenant's own limit: HERALD_MAX_SUBSCRIPTIONS_PER_TENANT applies again")
    .option("--reason <reason>", "why (kept in the audit log)")
    .action(
      async (
        tenant: string,
        o: ClientFlags & { maxSubscriptions?: string; default?: boolean; reason?: string },
      ) => {
        try {
          if ((o.maxSubscriptions === undefined) === (o.default !== true)) {
            throw new Error("give either --max-subscriptions <n> or --default");
          }
          const c = resolveClient({ url: o.apiUrl, token: o.token });
          let r: LimitsOut;
          if (o.default) {
            const q = o.reason ? `?${new URLSearchParams({ reason: o.reason })}` : "";
            r = await call<LimitsOut>(c, "DELETE", `${limitsPath(tenant)}${q}`);
          } else {
            const n = o.maxSubscriptions!;
            if (!/^\d+$/.test(n)) throw new Error(`--max-subscriptions must be a whole number; got "${n}"`);
            r = await call<LimitsOut>(c, "PUT", limitsPath(tenant), {
              max_subscriptions: Number(n),
              ...(o.reason ? { reason: o.reason } : {}),
            });
          }
          show(o, r);
        } catch (err) {
          failAs(o, err);
        }
      },
    );
}
