import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CATALOG_KIND,
  catalogError,
  classifyError,
  classifyStatus,
  ERROR_CATALOG,
  ERROR_KINDS,
  type ErrorCatalogKey,
  type ErrorKind,
  formatDetail,
  isErrorKind,
  isRetryable,
  MAX_DETAIL_LENGTH,
  NOT_RETRIED_SUFFIX,
  notRetriedDetail,
  WORKER_LOST,
  workerLost,
} from "../../src/domain/error-kind.ts";

function coded(code: string, message = `boom ${code}`, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(message), { code }, extra);
}

describe("kinds and catalog", () => {
  it("lists the nine kinds of the product contract", () => {
    expect([...ERROR_KINDS]).toEqual([
      "dns",
      "connection",
      "tls",
      "timeout",
      "4xx",
      "5xx",
      "ssrf_blocked",
      "response_too_large",
      "unknown",
    ]);
  });

  it("isErrorKind accepts exactly the kinds", () => {
    for (const kind of ERROR_KINDS) expect(isErrorKind(kind)).toBe(true);
    for (const other of ["", "DNS", "3xx", "timeout ", null, 4, undefined])
      expect(isErrorKind(other)).toBe(false);
  });

  it("gives every catalog message a kind, and every kind at least one message", () => {
    const keys = Object.keys(ERROR_CATALOG) as ErrorCatalogKey[];
    expect(Object.keys(CATALOG_KIND).sort()).toEqual([...keys].sort());
    for (const key of keys) expect(ERROR_KINDS).toContain(CATALOG_KIND[key]);
    for (const kind of ERROR_KINDS) expect(Object.values(CATALOG_KIND)).toContain(kind);
  });

  it("has short, single-line, distinct messages", () => {
    const messages = Object.values(ERROR_CATALOG);
    expect(new Set(messages).size).toBe(messages.length);
    for (const m of messages) {
      expect(m).not.toMatch(/[\r\n]/);
      expect(m.length).toBeLessThanOrEqual(100);
      expect(m).not.toMatch(/[:.]$/);
    }
  });

  it.each([
    "dns_not_found",
    "dns_failed",
    "connection_refused",
    "connection_reset",
    "connection_closed",
    "tls_cert_invalid",
    "tls_handshake",
    "timeout_connect",
    "timeout_response",
    "http_4xx",
    "http_5xx",
    "ssrf_private_address",
    "response_too_large",
    "worker_lost",
    "redirect_not_followed",
    "unknown",
  ])("contains %s", (key) => {
    expect(ERROR_CATALOG).toHaveProperty(key);
  });
});

describe("formatDetail", () => {
  it("is the bare message without specifics", () => {
    expect(formatDetail("http_5xx")).toBe(ERROR_CATALOG.http_5xx);
    expect(formatDetail("http_5xx", null)).toBe(ERROR_CATALOG.http_5xx);
    expect(formatDetail("http_5xx", "  ")).toBe(ERROR_CATALOG.http_5xx);
  });

  it("appends the specifics after a colon, on one line", () => {
    expect(formatDetail("connection_refused", "connect ECONNREFUSED\n  10.0.0.1:443")).toBe(
      `${ERROR_CATALOG.connection_refused}: connect ECONNREFUSED 10.0.0.1:443`,
    );
  });

  it("caps the detail at 500 characters (property)", () => {
    const keys = Object.keys(ERROR_CATALOG) as ErrorCatalogKey[];
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.string({ maxLength: 2000 }), (key, specifics) => {
        const detail = formatDetail(key, specifics);
        return (
          detail.length <= MAX_DETAIL_LENGTH &&
          detail.startsWith(ERROR_CATALOG[key]) &&
          !/[\r\n\t]/.test(detail)
        );
      }),
    );
    const long = formatDetail("unknown", "x".repeat(1000));
    expect(long).toHaveLength(MAX_DETAIL_LENGTH);
    expect(long.endsWith("…")).toBe(true);
  });

  it("catalogError pairs the kind with the detail", () => {
    expect(catalogError("tls_handshake", "EPROTO")).toEqual({
      kind: "tls",
      detail: `${ERROR_CATALOG.tls_handshake}: EPROTO`,
    });
  });
});

describe("workerLost", () => {
  it("is kind unknown with the worker_lost message", () => {
    expect(WORKER_LOST).toEqual({ kind: "unknown", detail: ERROR_CATALOG.worker_lost });
    expect(workerLost("lease expired at 2024-01-01T00:00:00Z")).toEqual({
      kind: "unknown",
      detail: `${ERROR_CATALOG.worker_lost}: lease expired at 2024-01-01T00:00:00Z`,
    });
    expect(Object.isFrozen(WORKER_LOST)).toBe(true);
  });
});

describe("classifyError: codes", () => {
  const table: Array<[string, ErrorKind, ErrorCatalogKey]> = [
    ["ENOTFOUND", "dns", "dns_not_found"],
    ["EAI_NONAME", "dns", "dns_not_found"],
    ["ENODATA", "dns", "dns_not_found"],
    ["EAI_AGAIN", "dns", "dns_failed"],
    ["EAI_FAIL", "dns", "dns_failed"],
    ["ESERVFAIL", "dns", "dns_failed"],
    ["EREFUSED", "dns", "dns_failed"],
    ["ECONNREFUSED", "connection", "connection_refused"],
    ["ECONNRESET", "connection", "connection_reset"],
    ["EPIPE", "connection", "connection_closed"],
    ["UND_ERR_SOCKET", "connection", "connection_closed"],
    ["EHOSTUNREACH", "connection", "connection_failed"],
    ["ENETUNREACH", "connection", "connection_failed"],
    ["ECONNABORTED", "connection", "connection_failed"],
    ["UND_ERR_CONNECT_TIMEOUT", "timeout", "timeout_connect"],
    ["UND_ERR_HEADERS_TIMEOUT", "timeout", "timeout_response"],
    ["UND_ERR_BODY_TIMEOUT", "timeout", "timeout_response"],
    ["UND_ERR_ABORTED", "timeout", "timeout_response"],
    ["ABORT_ERR", "timeout", "timeout_response"],
    ["HERALD_TIMEOUT", "timeout", "timeout_response"],
    ["ETIMEDOUT", "timeout", "timeout_response"],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "tls", "tls_cert_invalid"],
    ["SELF_SIGNED_CERT_IN_CHAIN", "tls", "tls_cert_invalid"],
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "tls", "tls_cert_invalid"],
    ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "tls", "tls_cert_invalid"],
    ["CERT_HAS_EXPIRED", "tls", "tls_cert_invalid"],
    ["CERT_NOT_YET_VALID", "tls", "tls_cert_invalid"],
    ["CERT_REVOKED", "tls", "tls_cert_invalid"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "tls", "tls_cert_invalid"],
    ["ERR_TLS_HANDSHAKE_TIMEOUT", "tls", "tls_handshake"],
    ["ERR_TLS_INVALID_PROTOCOL_VERSION", "tls", "tls_handshake"],
    ["ERR_SSL_WRONG_VERSION_NUMBER", "tls", "tls_handshake"],
    ["ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE", "tls", "tls_handshake"],
    ["EPROTO", "tls", "tls_handshake"],
    ["HERALD_SSRF_BLOCKED", "ssrf_blocked", "ssrf_private_address"],
    ["HERALD_RESPONSE_TOO_LARGE", "response_too_large", "response_too_large"],
    ["HPE_INVALID_CONSTANT", "unknown", "invalid_response"],
    ["HPE_INVALID_HEADER_TOKEN", "unknown", "invalid_response"],
    ["UND_ERR_RES_CONTENT_LENGTH_MISMATCH", "unknown", "invalid_response"],
    ["UND_ERR_INVALID_ARG", "unknown", "unknown"],
    ["ESOMETHINGNEW", "unknown", "unknown"],
  ];

  it.each(table)("%s → %s (%s)", (code, kind, key) => {
    const result = classifyError(coded(code));
    expect(result.kind).toBe(kind);
    expect(result.detail.startsWith(`${ERROR_CATALOG[key]}:`)).toBe(true);
  });

  it("ETIMEDOUT on connect is a connect timeout", () => {
    const err = coded("ETIMEDOUT", "connect ETIMEDOUT 203.0.113.1:443", { syscall: "connect" });
    expect(classifyError(err)).toEqual({
      kind: "timeout",
      detail: `${ERROR_CATALOG.timeout_connect}: connect ETIMEDOUT 203.0.113.1:443`,
    });
  });

  it("any getaddrinfo failure is a DNS failure", () => {
    const err = coded("EAI_WHATEVER", "getaddrinfo EAI_WHATEVER example.com", { syscall: "getaddrinfo" });
    expect(classifyError(err).kind).toBe("dns");
  });

  it("keeps the message and adds the code when the message lacks it", () => {
    expect(classifyError(coded("ENOTFOUND", "getaddrinfo ENOTFOUND hooks.example.com"))).toEqual({
      kind: "dns",
      detail: `${ERROR_CATALOG.dns_not_found}: getaddrinfo ENOTFOUND hooks.example.com`,
    });
    expect(classifyError(coded("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"))).toEqual({
      kind: "tls",
      detail: `${ERROR_CATALOG.tls_cert_invalid}: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)`,
    });
    expect(classifyError({ code: "ECONNRESET" })).toEqual({
      kind: "connection",
      detail: `${ERROR_CATALOG.connection_reset}: ECONNRESET`,
    });
  });

  it("does not expose Herald's internal codes in the detail", () => {
    expect(classifyError(coded("HERALD_SSRF_BLOCKED", "rebind.test resolved to 127.0.0.1"))).toEqual({
      kind: "ssrf_blocked",
      detail: `${ERROR_CATALOG.ssrf_private_address}: rebind.test resolved to 127.0.0.1`,
    });
  });
});

describe("classifyError: shapes", () => {
  it("follows the cause chain", () => {
    const err = new TypeError("fetch failed", {
      cause: coded("ECONNREFUSED", "connect ECONNREFUSED 1.2.3.4:80"),
    });
    expect(classifyError(err)).toEqual({
      kind: "connection",
      detail: `${ERROR_CATALOG.connection_refused}: connect ECONNREFUSED 1.2.3.4:80`,
    });
  });

  it("prefers a specific cause over a generic abort", () => {
    const err = coded("UND_ERR_ABORTED", "Request aborted", {
      cause: coded("HERALD_RESPONSE_TOO_LARGE", "too big"),
    });
    expect(classifyError(err).kind).toBe("response_too_large");
  });

  it("reads the first error of an AggregateError (happy eyeballs)", () => {
    const agg = new AggregateError([
      coded("ECONNREFUSED", "connect ECONNREFUSED ::1:80"),
      coded("ECONNREFUSED"),
    ]);
    expect(classifyError(agg).kind).toBe("connection");
  });

  it("recognises errors by name when they carry no code", () => {
    const timeout = new DOMException("The operation was aborted due to timeout", "TimeoutError");
    expect(classifyError(timeout).kind).toBe("timeout");
    const abort = new DOMException("This operation was aborted", "AbortError");
    expect(classifyError(abort).kind).toBe("timeout");
    expect(classifyError({ name: "ConnectTimeoutError", message: "Connect Timeout Error" })).toEqual({
      kind: "timeout",
      detail: `${ERROR_CATALOG.timeout_connect}: Connect Timeout Error`,
    });
    expect(classifyError({ name: "HeadersTimeoutError" }).kind).toBe("timeout");
  });

  it("an unknown error is kind unknown with its message", () => {
    expect(classifyError(new Error("something odd"))).toEqual({
      kind: "unknown",
      detail: `${ERROR_CATALOG.unknown}: something odd`,
    });
    expect(classifyError({})).toEqual({ kind: "unknown", detail: ERROR_CATALOG.unknown });
    expect(classifyError({ name: "WeirdError" })).toEqual({
      kind: "unknown",
      detail: `${ERROR_CATALOG.unknown}: WeirdError`,
    });
  });

  it("survives a cyclic cause chain", () => {
    const a: { code?: string; cause?: unknown; message: string } = { message: "a" };
    const b = { message: "b", cause: a };
    a.cause = b;
    expect(classifyError(a).kind).toBe("unknown");
  });

  it("never throws and always yields a kind and a capped detail (property)", () => {
    const errorLike = fc.record(
      {
        code: fc.oneof(fc.string(), fc.constantFrom("ECONNREFUSED", "ENOTFOUND", "CERT_X", "UND_ERR_SOCKET")),
        name: fc.string(),
        message: fc.string({ maxLength: 1000 }),
        syscall: fc.string(),
        cause: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(errorLike, (err) => {
        const result = classifyError(err);
        return ERROR_KINDS.includes(result.kind) && result.detail.length <= MAX_DETAIL_LENGTH;
      }),
    );
  });
});

describe("classifyStatus", () => {
  it("2xx is a success", () => {
    for (let status = 200; status <= 299; status++) expect(classifyStatus(status)).toBeNull();
  });

  it("3xx is a redirect that is not followed, kind 4xx", () => {
    expect(classifyStatus(302)).toEqual({
      kind: "4xx",
      detail: `${ERROR_CATALOG.redirect_not_followed}: HTTP 302`,
    });
    expect(classifyStatus(301, "HTTP 301 to https://new.example.com/hook")).toEqual({
      kind: "4xx",
      detail: `${ERROR_CATALOG.redirect_not_followed}: HTTP 301 to https://new.example.com/hook`,
    });
  });

  it.each([
    [400, "4xx", "http_4xx"],
    [404, "4xx", "http_4xx"],
    [410, "4xx", "http_4xx"],
    [429, "4xx", "http_4xx"],
    [499, "4xx", "http_4xx"],
    [500, "5xx", "http_5xx"],
    [503, "5xx", "http_5xx"],
    [599, "5xx", "http_5xx"],
    [100, "unknown", "http_unexpected_status"],
    [199, "unknown", "http_unexpected_status"],
    [600, "unknown", "http_unexpected_status"],
    [0, "unknown", "http_unexpected_status"],
  ] as const)("%i → %s", (status, kind, key) => {
    expect(classifyStatus(status)).toEqual({ kind, detail: `${ERROR_CATALOG[key]}: HTTP ${status}` });
  });

  it("classifies every status by its class (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), (status) => {
        const result = classifyStatus(status);
        if (status >= 200 && status < 300) return result === null;
        const expected: ErrorKind =
          status >= 300 && status < 500 ? "4xx" : status >= 500 && status < 600 ? "5xx" : "unknown";
        return result !== null && result.kind === expected && result.detail.endsWith(`HTTP ${status}`);
      }),
    );
  });
});

describe("kinds that are not retried", () => {
  it("only ssrf_blocked goes to the DLQ at once", () => {
    expect(ERROR_KINDS.filter((k) => !isRetryable(k))).toEqual(["ssrf_blocked"]);
  });

  it("the detail keeps the attempt's own detail, says so, and stays within the limit", () => {
    const short = catalogError("ssrf_private_address", "rebind.test resolved to 127.0.0.1").detail;
    expect(notRetriedDetail(short)).toBe(`${short}${NOT_RETRIED_SUFFIX}`);
    fc.assert(
      fc.property(fc.string({ maxLength: 2 * MAX_DETAIL_LENGTH }), (specifics) => {
        const out = notRetriedDetail(formatDetail("ssrf_private_address", specifics));
        return (
          out.length <= MAX_DETAIL_LENGTH &&
          out.startsWith(ERROR_CATALOG.ssrf_private_address) &&
          out.endsWith(NOT_RETRIED_SUFFIX)
        );
      }),
    );
  });
});
