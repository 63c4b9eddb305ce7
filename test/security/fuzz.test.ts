import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { rawRequest } from "../support/raw-request.ts";
import { STORE_KINDS } from "../support/store.ts";

/**
 * Property-based fuzzing of every /v1 route (read from /openapi.json): hostile values in one path
 * parameter, query parameter or body field at a time, and whole arbitrary bodies. Whatever is sent:
 * never a 5xx; a value that can never be valid (NUL, lone surrogate, 1 MB, a number past its bound, a
 * wrong type, an id not written in decimal digits) is a 4xx; every error is `{error:{code,message}}`,
 * a 400/413/422 naming the field or parameter; and a refused write leaves no row behind.
 *
 * `npm test` runs FUZZ_RUNS runs per store within FUZZ_BUDGET_MS; `npm run test:fuzz` sets
 * HERALD_FUZZ_RUNS (and a larger budget) for a longer search.
 */
const RUNS = Number(process.env.HERALD_FUZZ_RUNS ?? 150);
const BUDGET_MS = Number(
  process.env.HERALD_FUZZ_BUDGET_MS ?? (process.env.HERALD_FUZZ_RUNS ? 1_800_000 : 20_000),
);

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  anyOf?: Schema[];
  format?: string;
  enum?: unknown[];
}
interface Param {
  name: string;
  in: "path" | "query" | "header";
  schema?: Schema;
}
interface Route {
  method: string;
  path: string;
  params: Param[];
  query: Param[];
  body: Schema | null;
}

/** A value written into the JSON text as it is (numbers JSON can hold but JavaScript cannot). */
class Raw {
  constructor(readonly text: string) {}
}
/** A value and whether it can never be valid wherever it is put. */
interface Hostile {
  value: unknown;
  invalid: boolean;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const isWellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
const unstorable = (s: string) => s.includes("\u0000") || !isWellFormed(s);

const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));
const namedStrings = [
  "a\u0000b",
  "\u0000",
  "\ud800",
  "x\udc00y",
  "'; DROP TABLE events; --",
  "' OR '1'='1",
  "../../etc/passwd",
  "..\\..\\windows",
  "%00",
  "%2e%2e%2f",
  "<script>alert(1)</script>",
  "\u202e\ufeff",
  "💥",
  "",
  " ",
];
const ONE_MB = "x".repeat(1024 * 1024);

/** Strings for a body: the named ones, arbitrary UTF-16 (lone surrogates included), and 1 MB. */
const bodyString: fc.Arbitrary<Hostile> = fc.oneof(
  fc.constantFrom(...namedStrings).map((s) => ({ value: s, invalid: unstorable(s) })),
  fc.string({ unit: anyUnit, maxLength: 40 }).map((s) => ({ value: s, invalid: unstorable(s) })),
  fc.constant({ value: ONE_MB, invalid: true }),
);

/** Integers for a body field: at and past every bound (the past ones are invalid for every field). */
const bodyInteger: fc.Arbitrary<Hostile> = fc.oneof(
  fc.constantFrom(0, 1, 100, 1000, MAX_SAFE).map((v) => ({ value: v, invalid: false })),
  fc
    .constantFrom<unknown>(
      -1,
      1.5,
      1e300,
      2 ** 63,
      "1",
      "100",
      true,
      null,
      [1],
      new Raw("9007199254740993"),
      new Raw("99999999999999999999"),
      new Raw("1e400"),
      new Raw("-1e400"),
    )
    .map((v) => ({ value: v, invalid: true })),
);

/** Arbitrary JSON with hostile strings and numbers inside, and nesting past the limit. */
const payload: fc.Arbitrary<Hostile> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ value: v, invalid: false })),
  bodyString.map((h) => ({ value: { k: [h.value] }, invalid: h.invalid })),
  bodyString
    .filter((h) => typeof h.value === "string" && (h.value as string).length < 100)
    .map((h) => ({ value: { [h.value as string]: 1 }, invalid: h.invalid })),
  fc
    .integer({ min: 65, max: 6000 })
    .map((d) => ({ value: new Raw(`${"[".repeat(d)}${"]".repeat(d)}`), invalid: true })),
  fc
    .constantFrom("12345678901234567890", "1e400", "1e-400")
    .map((n) => ({ value: { n: new Raw(n) }, invalid: true })),
);

/** Any value for a field of this schema; `invalid` when no field of that schema may hold it. */
function valueFor(schema: Schema | undefined): fc.Arbitrary<Hostile> {
  const type = schema?.type ?? schema?.anyOf?.find((s) => s.type && s.type !== "null")?.type;
  const wrongType = (v: unknown) => ({ value: v, invalid: true });
  switch (type) {
    case "integer":
    case "number":
      return bodyInteger;
    case "string":
      return fc.oneof(bodyString, fc.constantFrom(5, true, ["x"], { a: 1 }).map(wrongType));
    case "boolean":
      return fc.constantFrom("true", 1, "yes", null).map(wrongType);
    case "array":
      return fc.oneof(
        fc
          .array(schema?.items?.type === "integer" ? bodyInteger : bodyString, { minLength: 1, maxLength: 3 })
          .map((xs) => ({ value: xs.map((x) => x.value), invalid: xs.some((x) => x.invalid) })),
        fc.constantFrom("x", 5, { a: 1 }).map(wrongType),
      );
    case "object":
      return fc.oneof(fc.constantFrom("x", 5, [1]).map(wrongType), payload);
    default:
      return payload;
  }
}

/** Path segments: never valid (no such id, or not an id at all). Written raw, so `%00` arrives as NUL. */
const pathSegment = fc.oneof(
  fc.constantFrom("1e3", "0x10", "+1", "%201", "-1", "1.0", "0", "99999999999999999999", "9007199254740993"),
  fc.constantFrom(
    "%00",
    "a%00b",
    "..",
    "%2e%2e",
    "..%2F..%2Fv1%2Ftokens",
    "%27%20OR%20%271%27%3D%271",
    "x".repeat(100),
  ),
  // Encoded, at most 100 characters: longer raw parameters are the router's to refuse (a 414).
  fc.string({ unit: "binary", minLength: 1, maxLength: 8 }).map((s) => encodeURIComponent(s)),
);

/** Query values (as text): hostile strings, and integers at and past their bounds. */
const queryValue: fc.Arbitrary<{ text: string; invalid: boolean }> = fc.oneof(
  fc
    .constantFrom(
      "%00",
      "a%00",
      "1e3",
      "0x10",
      "%2B1",
      "%201",
      "-1",
      "0",
      "99999999999999999999",
      "9007199254740993",
    )
    .map((text) => ({ text, invalid: text.includes("%00") })),
  fc.constantFrom(...namedStrings.filter(isWellFormed)).map((s) => ({
    text: encodeURIComponent(s),
    invalid: s.includes("\u0000"),
  })),
  fc.string({ unit: "binary", maxLength: 30 }).map((s) => ({ text: encodeURIComponent(s), invalid: false })),
);
const INTEGER_QUERY_INVALID = /^(%00|a%00|1e3|0x10|%2B1|%201|-1|0|99999999999999999999|9007199254740993)$/;

/** JSON text with each Raw value written as it is. */
function jsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v) => {
    if (v instanceof Raw) {
      raws.push(v.text);
      return `\u0001RAW${raws.length - 1}\u0001`;
    }
    return v;
  });
  return text.replace(/"\\u0001RAW(\d+)\\u0001"/g, (_m, i: string) => raws[Number(i)]!);
}

function routesOf(openapi: {
  paths: Record<
    string,
    Record<string, { parameters?: Param[]; requestBody?: { content: Record<string, { schema: Schema }> } }>
  >;
}): Route[] {
  const out: Route[] = [];
  for (const [path, ops] of Object.entries(openapi.paths)) {
    if (!path.startsWith("/v1/")) continue;
    for (const [method, op] of Object.entries(ops)) {
      const params = op.parameters ?? [];
      out.push({
        method: method.toUpperCase(),
        path,
        params: params.filter((p) => p.in === "path"),
        query: params.filter((p) => p.in === "query"),
        body: op.requestBody?.content["application/json"]?.schema ?? null,
      });
    }
  }
  return out;
}

/** Every name a message may use to point at the problem on this route. */
function namesOf(route: Route): string[] {
  const names = new Set<string>(["body", "payload", "field", "parameter"]);
  for (const p of [...route.params, ...route.query]) names.add(p.name);
  const walk = (s: Schema | undefined, depth: number) => {
    if (!s || depth > 3) return;
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      names.add(k);
      walk(v, depth + 1);
    }
    walk(s.items, depth + 1);
  };
  walk(route.body ?? undefined, 0);
  return [...names];
}

const COUNTED = [
  "events",
  "deliveries",
  "subscriptions",
  "tokens",
  "retrigger_jobs",
  "retrigger_items",
  "audit_log",
];

describe.each(STORE_KINDS)("fuzzing every /v1 route on the %s store", (kind) => {
  let h: TestHerald;
  let routes: Route[];
  const ids: Record<string, string> = {};
  const bases: Record<string, Record<string, unknown>> = {};

  const counts = async () => {
    const out: Record<string, number> = {};
    for (const t of COUNTED) {
      const r = await h.store.db.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${t}`);
      out[t] = Number(r.rows[0]!.n);
    }
    return out;
  };

  beforeAll(async () => {
    h = await startTestHerald(kind, { maxBodyBytes: 64 * 1024 });
    const sub = await h.api<{ subscription_id: string }>("POST", "/v1/subscriptions", {
      tenant_id: "fz",
      url: "http://127.0.0.1:9/fz",
      event_types: ["fz.e"],
      ordering: "ordered",
    });
    expect(sub.status).toBe(201);
    const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "fz",
      event_type: "fz.e",
      payload: { a: 1 },
    });
    expect(ev.status).toBe(202);
    const job = await h.api<{ job_id: number }>("POST", "/v1/retriggers", {
      tenant_id: "fz",
      event_type: "fz.e",
      event_ids: [ev.body.event_id],
    });
    expect(job.status).toBe(202);
    const delivery = await h.api<{ deliveries: Array<{ delivery_id: number }> }>(
      "GET",
      `/v1/events/${ev.body.event_id}`,
    );
    Object.assign(ids, {
      id: sub.body.subscription_id,
      event_id: String(ev.body.event_id),
      delivery_id: String(delivery.body.deliveries[0]!.delivery_id),
    });
    const event = { tenant_id: "fz", event_type: "fz.e", payload: { a: 1 } };
    Object.assign(bases, {
      "POST /v1/events": event,
      "POST /v1/events/batch": { events: [event] },
      "POST /v1/subscriptions": { tenant_id: "fz", url: "http://127.0.0.1:9/fz", event_types: ["fz.e"] },
      "PATCH /v1/subscriptions/{id}": { description: "d" },
      "POST /v1/subscriptions/{id}/rotate-secret": { overlap_seconds: 10 },
      "POST /v1/subscriptions/{id}/head/drop": { reason: "r" },
      "POST /v1/subscriptions/{id}/dlq/replay": { since: "2020-01-01T00:00:00Z" },
      "POST /v1/events/{event_id}/repair": { payload: { a: 2 }, reason: "r" },
      "POST /v1/retriggers": {
        tenant_id: "fz",
        event_type: "fz.e",
        event_ids: [ev.body.event_id],
        dry_run: true,
      },
      "POST /v1/retriggers/{id}/resume": { reason: "r" },
      "POST /v1/retriggers/{id}/cancel": { reason: "r" },
      "POST /v1/tokens": { tenant_id: "fz", name: "n" },
    });
    // Job routes take the job's id as {id}; the rest the subscription's.
    ids.job = String(job.body.job_id);
    const res = await fetch(`${h.url}/openapi.json`);
    routes = routesOf((await res.json()) as Parameters<typeof routesOf>[0]);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The path with real ids, except `hostile` in place of parameter `name`. */
  const pathOf = (route: Route, name?: string, hostile?: string) =>
    route.path.replace(/\{([^}]+)\}/g, (_m, p: string) => {
      if (p === name) return hostile!;
      if (p === "id" && route.path.startsWith("/v1/retriggers")) return ids.job!;
      return ids[p] ?? "1";
    });

  it("reads the routes from /openapi.json", () => {
    expect(routes.length).toBeGreaterThan(15);
    expect(routes.map((r) => `${r.method} ${r.path}`)).toContain("POST /v1/events");
  });

  it(
    "answers every hostile input with a 4xx naming the field, never a 5xx, and keeps nothing",
    async () => {
      const arbRequest = fc.constantFrom(...routes).chain((route) => {
        const options: fc.Arbitrary<{
          path: string;
          query: string;
          body?: string;
          invalid: boolean;
          where: string;
        }>[] = [];
        const withBody = route.body !== null;
        const baseBody = () => jsonText(bases[`${route.method} ${route.path}`] ?? {});
        for (const p of route.params) {
          options.push(
            pathSegment.map((seg) => ({
              path: pathOf(route, p.name, seg),
              query: "",
              ...(withBody ? { body: baseBody() } : {}),
              // Every other path parameter is an id that no hostile segment can name; a tenant id is free
              // text, so any storable one is a tenant (with no subscriptions, say).
              invalid: p.name === "tenant_id" ? /%00/i.test(seg) : true,
              where: `path ${p.name}`,
            })),
          );
        }
        for (const q of route.query) {
          const integer = q.schema?.type === "integer";
          options.push(
            queryValue.map((v) => ({
              path: pathOf(route),
              query: `?${encodeURIComponent(q.name)}=${v.text}`,
              invalid: v.invalid || (integer && INTEGER_QUERY_INVALID.test(v.text)),
              where: `query ${q.name}`,
            })),
          );
        }
        options.push(
          fc.constantFrom("%00", "x%00", "unknown_param").map((name) => ({
            path: pathOf(route),
            query: `?${name}=1`,
            // Routes without query parameters ignore unknown ones; a NUL in a name is refused anywhere.
            invalid: name.includes("%00") || route.query.length > 0,
            where: "query name",
          })),
        );
        if (withBody) {
          const base = (bases[`${route.method} ${route.path}`] ?? {}) as Record<string, unknown>;
          const props = Object.entries(route.body?.properties ?? {});
          for (const [name, schema] of props) {
            options.push(
              valueFor(schema).map((v) => ({
                path: pathOf(route),
                query: "",
                body: jsonText({ ...base, [name]: v.value }),
                invalid: v.invalid,
                where: `body ${name}`,
              })),
            );
          }
          const item = route.body?.properties?.events?.items;
          for (const [name, schema] of Object.entries(item?.properties ?? {})) {
            options.push(
              valueFor(schema).map((v) => ({
                path: pathOf(route),
                query: "",
                body: jsonText({ events: [{ ...(base.events as object[])[0], [name]: v.value }] }),
                invalid: v.invalid,
                where: `body events.0.${name}`,
              })),
            );
          }
          options.push(
            fc.jsonValue({ maxDepth: 3 }).map((v) => ({
              path: pathOf(route),
              query: "",
              body: jsonText(v),
              invalid: false,
              where: "whole body",
            })),
            fc.constantFrom("{", "[1,]", '{"a":1}x', "\u0000", "nul").map((text) => ({
              path: pathOf(route),
              query: "",
              body: text,
              invalid: true,
              where: "not JSON",
            })),
            fc.constantFrom("zz_unknown", "__proto__x", "\u0000").map((name) => ({
              path: pathOf(route),
              query: "",
              body: jsonText({ ...base, [name]: 1 }),
              invalid: true,
              where: "unknown body field",
            })),
          );
        }
        return fc.tuple(fc.constant(route), fc.oneof(...options));
      });

      await fc.assert(
        fc.asyncProperty(arbRequest, async ([route, r]) => {
          // Counted before each request: shrinking replays requests in any order after a failure.
          const before = await counts();
          const res = await rawRequest(h.url, route.method, `${r.path}${r.query}`, ADMIN, r.body);
          const what = `${route.method} ${route.path} (${r.where}) → ${res.status} ${res.text.slice(0, 300)}`;
          expect(res.status, what).toBeLessThan(500);
          if (r.invalid) expect(res.status, what).toBeGreaterThanOrEqual(400);
          if (res.status >= 400) {
            const body = JSON.parse(res.text) as { error: { code: unknown; message: unknown } };
            expect(Object.keys(body), what).toEqual(["error"]);
            expect(typeof body.error.code, what).toBe("string");
            expect(typeof body.error.message, what).toBe("string");
            if ([400, 413, 422].includes(res.status)) {
              const message = body.error.message as string;
              expect(
                namesOf(route).some((n) => message.includes(n)),
                what,
              ).toBe(true);
            }
            const after = await counts();
            expect(after, `${what}: a refused request left rows behind`).toEqual(before);
          }
        }),
        { numRuns: RUNS, interruptAfterTimeLimit: BUDGET_MS, markInterruptAsFailure: false },
      );
    },
    BUDGET_MS + 120_000,
  );
});
