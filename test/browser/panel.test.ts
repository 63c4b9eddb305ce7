/**
 * The stuck-queue runbook walked through the panel in a real browser (Debian's chromium, driven by
 * playwright-core), then a re-trigger dry run and run, and the audit trail of it all. Saves screenshots
 * of the main pages under test-results/screenshots/ (under docs/screenshots/ with UPDATE_SCREENSHOTS=1,
 * which is how the README's pictures are refreshed).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Receiver } from "../support/receiver.ts";

const CHROMIUM = process.env.HERALD_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = path.resolve(process.env.UPDATE_SCREENSHOTS ? "docs/screenshots" : "test-results/screenshots");
fs.mkdirSync(SHOTS, { recursive: true });
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  process.stderr.write(
    `[browser] ${CHROMIUM} not found: skipping the browser suite (apt-get install -y chromium)\n`,
  );
}

/** Waits (Playwright's auto-waiting, bounded) until the locator's text matches. */
async function untilText(locator: Locator, text: RegExp, timeout = 30_000): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor({ state: "visible", timeout });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

interface Sub {
  subscription_id: string;
  secret: string;
}

describe.skipIf(!haveChromium)("the operator panel in a browser", () => {
  let h: TestHerald;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const rx = new Receiver();
  const flaky = new Receiver();
  const steady = new Receiver();

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    await Promise.all([rx.start(), flaky.start(), steady.start()]);
    h = await startTestHerald(
      "embedded",
      // The head's second attempt would come a minute later: it stays stuck for the whole test.
      {
        retryScheduleMs: [60_000],
        schedulerIntervalMs: 300,
        requestTimeoutMs: 5000,
        leaseMs: 20_000,
        sampleIntervalMs: 1000,
      },
      { api: true, dispatcher: true },
    );
    profile = fs.mkdtempSync(path.join(os.tmpdir(), "herald-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1360, height: 900 },
      colorScheme: "light",
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
  });

  afterAll(async () => {
    await context?.close();
    await h?.close();
    await Promise.all([rx.close(), flaky.close(), steady.close()]);
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it("runbook: log in, diagnose the paused subscription, drop the head, resume, drain; re-trigger; audit", async () => {
    // Two neighbours, so the list shows healthy and failing endpoints too.
    const ok = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "globex",
      url: steady.url("/webhooks/herald"),
      event_types: ["*"],
      ordering: "unordered",
      description: "billing sync",
    });
    steady.trust(ok.body.secret);
    flaky.behaviour = () => ({ status: 503, body: "maintenance" });
    const bad = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "initech",
      url: flaky.url("/in"),
      event_types: ["*"],
      ordering: "unordered",
    });
    flaky.trust(bad.body.secret);
    for (const [tenant, n] of [
      ["globex", 5],
      ["initech", 3],
    ] as const) {
      for (let i = 1; i <= n; i++) {
        await h.api("POST", "/v1/events", { tenant_id: tenant, event_type: "invoice.paid", payload: { i } });
      }
    }

    // The runbook's subscription: ordered, pending ceiling 100, the consumer rejects only event #1.
    const s = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "acme",
      url: rx.url("/hooks/contracts"),
      event_types: ["contract.executed"],
      ordering: "ordered",
      pending_ceiling: 100,
      description: "contract mirror",
    });
    rx.trust(s.body.secret);
    const id = s.body.subscription_id;
    rx.behaviour = (r) =>
      (r.body.data as { n: number }).n === 1
        ? { status: 400, body: "contract c-1 fails validation" }
        : { status: 200 };
    const send = (n: number) =>
      h.api<{ event_id: number }>("POST", "/v1/events", {
        tenant_id: "acme",
        event_type: "contract.executed",
        aggregate_id: `c-${n}`,
        payload: { n, contract: `c-${n}` },
      });
    const first = await send(1);
    await rx.waitFor((r) => r.length === 1, 20_000, "the head's first attempt");
    let next = 2;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let n = next++; n <= 150; n = next++) expect((await send(n)).status).toBe(202);
      }),
    );
    await steady.waitFor((r) => r.length === 5, 20_000, "globex's deliveries");
    await flaky.waitFor((r) => r.length === 3, 20_000, "initech's first attempts");

    // Log in.
    await page.goto(`${h.url}/webhooks`);
    await page.waitForURL(/\/webhooks\/login/);
    await shot(page, "login");
    await page.getByLabel("Admin token").fill("not-the-token");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").filter({ hasText: "That is not the admin token" }).waitFor();
    await page.getByLabel("Admin token").fill(ADMIN);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Subscriptions" }).waitFor();

    // The list: the subscription is paused by its pending ceiling, 150 pending against 100.
    const row = page.locator(`#row-${id}`);
    await untilText(row, /paused/);
    await untilText(row, /pending ceiling reached/);
    await untilText(row.locator('td[data-label="Pending"]'), /150\s*\/\s*100/);
    await untilText(row.locator('td[data-label="Last error"]'), /4xx/);
    // The charts have samples (the sampler runs every second here).
    await row.locator("svg.chart[aria-label*='pending peaked at 150']").waitFor();
    await shot(page, "subscriptions");

    // Live numbers: a change made elsewhere (the API) shows up without reloading the page.
    await page.waitForFunction(() => "htmx" in globalThis);
    await page.evaluate(() => {
      (globalThis as unknown as { stillHere: boolean }).stillHere = true;
    });
    const okRow = page.locator(`#row-${ok.body.subscription_id}`);
    await untilText(okRow, /active/);
    expect(
      (await h.api("PATCH", `/v1/subscriptions/${ok.body.subscription_id}`, { status: "paused" })).status,
    ).toBe(200);
    await untilText(okRow, /paused by an operator/, 20_000);
    expect(await page.evaluate(() => (globalThis as unknown as { stillHere?: boolean }).stillHere)).toBe(
      true,
    );
    // Per-row Resume.
    await okRow.getByRole("button", { name: `Resume ${ok.body.subscription_id}` }).click();
    await untilText(page.locator(`#row-${ok.body.subscription_id}`), /active/);

    // Filter by status.
    await page.getByLabel("Status").selectOption("paused");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/status=paused/);
    await expect
      .poll(() => page.locator(`#row-${ok.body.subscription_id}`).count(), { timeout: 10_000 })
      .toBe(0);
    await row.waitFor();

    // Open it: the diagnosis says the consumer rejects the head.
    await row.getByRole("link", { name: id }).click();
    await page.getByRole("heading", { name: /Diagnosis/ }).waitFor();
    const diagnosis = page.getByRole("region", { name: /Diagnosis/ });
    await untilText(diagnosis, /head_rejected/);
    await untilText(diagnosis, /Consumer rejects the head event/);
    await untilText(page.getByTestId("head-event"), new RegExp(`^${first.body.event_id}$`));
    const attempts = page.getByRole("list", { name: `Attempts of event ${first.body.event_id}` });
    await untilText(attempts, /HTTP 400/);
    await untilText(attempts, /receiver rejected the request/);
    await shot(page, "subscription");

    // Drop the head: a reason, then a confirmation step.
    await page.getByLabel(/Reason \(kept in the audit log/).fill("contract c-1 is corrupt, ticket OPS-7");
    await page.getByRole("button", { name: /Drop head event/ }).click();
    const confirm = page.getByRole("alertdialog");
    await untilText(confirm, new RegExp(`Drop event ${first.body.event_id}\\?`));
    await shot(page, "drop-confirm");
    await confirm.getByRole("button", { name: "Confirm drop" }).click();
    await untilText(page.getByRole("status"), new RegExp(`Dropped event ${first.body.event_id}`));

    // Resume, and watch pending fall to 0 without reloading.
    await page.evaluate(() => {
      (globalThis as unknown as { stillHere: boolean }).stillHere = true;
    });
    await page.getByRole("button", { name: `Resume ${id}` }).click();
    await untilText(page.getByTestId("status"), /active/);
    await untilText(page.getByTestId("pending"), /^\s*0\s*\/\s*100/, 60_000);
    await rx.waitFor((r) => r.length === 150, 30_000, "events 2..150");
    await untilText(page.getByTestId("dlq"), /^\s*1\s*\/\s*1,000/);
    expect(await page.evaluate(() => (globalThis as unknown as { stillHere?: boolean }).stillHere)).toBe(
      true,
    );

    // The error log: the rejected head, with the catalog message; filterable by error kind.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Errors" }).click();
    await page.getByRole("heading", { name: "Error log" }).waitFor();
    await page.getByLabel("Error kind").selectOption("4xx");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/error_kind=4xx/);
    const errors = page.getByRole("table", { name: "Failed and DLQ deliveries" });
    await untilText(errors, /receiver rejected the request/);
    await expect.poll(() => errors.getByText("5xx").count(), { timeout: 10_000 }).toBe(0);
    await page.getByLabel("Error kind").selectOption("");
    await page.getByRole("button", { name: "Filter" }).click();
    await untilText(errors, /receiver failed to process the request/);
    await shot(page, "errors");

    // Re-trigger three contracts: a dry run first, then run it.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Re-triggers" }).click();
    await page.getByRole("heading", { name: "Re-trigger jobs" }).waitFor();
    await page.getByLabel("Tenant").fill("acme");
    await page.getByLabel("Event type").fill("contract.executed");
    await page.getByLabel("aggregate IDs").check();
    await page.getByLabel(/IDs \(one per line/).fill("c-2\nc-3\nc-4");
    await page.getByRole("button", { name: "Dry run" }).click();
    await untilText(page.getByTestId("would-trigger"), /^3$/);
    expect(rx.received).toHaveLength(150);
    await shot(page, "retrigger-dry-run");
    await page.getByRole("button", { name: /Run it: re-send 3 events/ }).click();
    await page.getByRole("heading", { name: /Re-trigger job \d+/ }).waitFor();
    const jobId = Number(/job (\d+)/.exec((await page.locator("h1").textContent()) ?? "")?.[1]);
    await untilText(page.getByTestId("job-status"), /completed/, 60_000);
    await untilText(page.getByTestId(`progress-${jobId}`), /3 of 3 done/);
    await rx.waitFor((r) => r.length === 153, 30_000, "the three re-sent contracts");
    expect(rx.received.slice(150).map((r) => (r.body.data as { contract: string }).contract)).toEqual([
      "c-2",
      "c-3",
      "c-4",
    ]);
    await page.getByRole("link", { name: "← All re-trigger jobs" }).click();
    await untilText(page.locator(`#job-${jobId}`), /3 of 3 done/);
    await shot(page, "retriggers");

    // The audit log shows each step.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click();
    const audit = page.getByRole("table", { name: "Audit rows" });
    await untilText(audit, /retrigger\.created/);
    const rows = (await audit.locator("tbody tr").allTextContents()).map((t) => t.replace(/\s+/g, " "));
    const find = (re: RegExp) => rows.find((r) => re.test(r));
    expect(
      find(/system subscription\.paused .*pending deliveries reached the pending ceiling/),
    ).toBeDefined();
    expect(find(/admin subscription\.head_dropped .*contract c-1 is corrupt, ticket OPS-7/)).toBeDefined();
    expect(find(/admin subscription\.resumed/)).toBeDefined();
    expect(find(new RegExp(`admin retrigger\\.created job ${jobId}`))).toBeDefined();
    await shot(page, "audit");

    // On a phone-sized screen the list becomes cards.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Subscriptions" }).click();
    await untilText(page.locator(`#row-${id}`), /active/);
    await shot(page, "subscriptions-narrow");

    // Log out: the panel asks for the token again.
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByLabel("Admin token").waitFor();
    await page.goto(`${h.url}/webhooks/audit`);
    await page.waitForURL(/\/webhooks\/login/);

    const final = await eventually(async () => {
      const v = await h.api<{ pending_count: number; status: string }>("GET", `/v1/subscriptions/${id}`);
      return v.body.pending_count === 0 ? v.body : undefined;
    });
    expect(final.status).toBe("active");
  });
});
