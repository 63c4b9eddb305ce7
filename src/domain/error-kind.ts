/**
 * The error catalog of a delivery attempt: the `error_kind` column and the fixed messages that
 * start every `error_detail`. Pure: no I/O, no clock.
 *
 * An `error_detail` is always `<catalog message>` or `<catalog message>: <specifics>` (the host,
 * address, error code or status that made this attempt fail), at most {@link MAX_DETAIL_LENGTH}
 * characters, on one line.
 */

/** Every value the `error_kind` column may hold. */
export const ERROR_KINDS = [
  "dns",
  "connection",
  "tls",
  "timeout",
  "4xx",
  "5xx",
  "ssrf_blocked",
  "response_too_large",
  "unknown",
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

export function isErrorKind(value: unknown): value is ErrorKind {
  return typeof value === "string" && (ERROR_KINDS as readonly string[]).includes(value);
}

/**
 * Kinds that waiting cannot cure: the target resolves to an address Herald refuses, and it refuses it
 * again on every attempt. An attempt failing with one of these goes to the DLQ at once, whatever
 * attempts the schedule has left; an operator's replay (after fixing the URL or its DNS) still tries.
 */
export const NOT_RETRIED_KINDS: readonly ErrorKind[] = ["ssrf_blocked"];

/** False for a kind in {@link NOT_RETRIED_KINDS}: its failure is final for this delivery. */
export function isRetryable(kind: ErrorKind): boolean {
  return !NOT_RETRIED_KINDS.includes(kind);
}

/** What follows the detail of an attempt that was not retried because of its kind. */
export const NOT_RETRIED_SUFFIX =
  "; not retried: moved to the DLQ at once (replay after fixing the URL or its DNS)";

/** Longest `error_detail` we ever produce. */
export const MAX_DETAIL_LENGTH = 500;

/**
 * The fixed messages. Each key belongs to exactly one {@link ErrorKind} (see
 * {@link CATALOG_KIND}).
 *
 * Redirects: Herald never follows a redirect (a 3xx could point a signed request anywhere, also
 * past the SSRF guard). A 3xx answer is a failed attempt of kind `"4xx"` with the message
 * `redirect_not_followed`: like a 4xx it is a live receiver telling us the request itself must
 * change (here: the subscription URL), so the runbook's "consumer rejects" branch applies rather
 * than "consumer down", and retrying will not help until someone fixes the URL.
 */
export const ERROR_CATALOG = {
  dns_not_found: "host name not found",
  dns_failed: "host name could not be resolved",
  connection_refused: "connection refused",
  connection_reset: "connection reset by the receiver",
  connection_closed: "connection closed by the receiver before the response was complete",
  connection_failed: "could not connect to the receiver",
  tls_cert_invalid: "TLS certificate rejected",
  tls_handshake: "TLS handshake failed",
  timeout_connect: "timed out before the request could be sent",
  timeout_response: "timed out waiting for the receiver's response",
  redirect_not_followed: "receiver answered with a redirect, which is not followed",
  http_4xx: "receiver rejected the request",
  http_5xx: "receiver failed to process the request",
  http_unexpected_status: "receiver answered with an unexpected status",
  invalid_response: "receiver sent an invalid HTTP response",
  ssrf_private_address: "target resolves to a private, loopback or reserved address",
  invalid_url: "target URL is not valid",
  response_too_large: "response body exceeded the size limit",
  worker_lost:
    "worker lost: the dispatcher died or its lease expired mid-attempt; the request may have been sent",
  unknown: "delivery failed",
} as const;

export type ErrorCatalogKey = keyof typeof ERROR_CATALOG;

/** The `error_kind` that goes with each catalog message. */
export const CATALOG_KIND: Readonly<Record<ErrorCatalogKey, ErrorKind>> = {
  dns_not_found: "dns",
  dns_failed: "dns",
  connection_refused: "connection",
  connection_reset: "connection",
  connection_closed: "connection",
  connection_failed: "connection",
  tls_cert_invalid: "tls",
  tls_handshake: "tls",
  timeout_connect: "timeout",
  timeout_response: "timeout",
  redirect_not_followed: "4xx",
  http_4xx: "4xx",
  http_5xx: "5xx",
  http_unexpected_status: "unknown",
  invalid_response: "unknown",
  ssrf_private_address: "ssrf_blocked",
  invalid_url: "unknown",
  response_too_large: "response_too_large",
  worker_lost: "unknown",
  unknown: "unknown",
};

export interface ClassifiedError {
  kind: ErrorKind;
  detail: string;
}

/** Error codes Herald's own sender raises (set on `err.code`). */
export const HERALD_SSRF_BLOCKED = "HERALD_SSRF_BLOCKED";
export const HERALD_RESPONSE_TOO_LARGE = "HERALD_RESPONSE_TOO_LARGE";
export const HERALD_TIMEOUT = "HERALD_TIMEOUT";

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * `<catalog message>: <specifics>` (or the bare message when there are no specifics), on one
 * line, capped at {@link MAX_DETAIL_LENGTH} characters.
 */
export function formatDetail(key: ErrorCatalogKey, specifics?: string | null): string {
  const base = ERROR_CATALOG[key];
  const extra = specifics == null ? "" : oneLine(specifics);
  const full = extra === "" ? base : `${base}: ${extra}`;
  if (full.length <= MAX_DETAIL_LENGTH) return full;
  return `${full.slice(0, MAX_DETAIL_LENGTH - 1)}…`;
}

/**
 * The detail of an attempt sent to the DLQ without retries: the attempt's own detail (cut to fit) and
 * {@link NOT_RETRIED_SUFFIX}, still at most {@link MAX_DETAIL_LENGTH} characters.
 */
export function notRetriedDetail(detail: string): string {
  const room = MAX_DETAIL_LENGTH - NOT_RETRIED_SUFFIX.length;
  const head = detail.length <= room ? detail : `${detail.slice(0, room - 1)}…`;
  return `${head}${NOT_RETRIED_SUFFIX}`;
}

/** Kind and detail for a catalog message. */
export function catalogError(key: ErrorCatalogKey, specifics?: string | null): ClassifiedError {
  return { kind: CATALOG_KIND[key], detail: formatDetail(key, specifics) };
}

/**
 * What an attempt records when its lease expired while it was `in_flight`: the dispatcher died
 * after the POST may already have left, so the receiver may have it (kind `"unknown"`).
 */
export function workerLost(specifics?: string | null): ClassifiedError {
  return catalogError("worker_lost", specifics);
}

/** {@link workerLost} without specifics. */
export const WORKER_LOST: Readonly<ClassifiedError> = Object.freeze(workerLost());

/** The shape of anything thrown by Node, undici or Herald's sender that we can classify. */
export interface ErrorLike {
  /** A string for Node, undici and OpenSSL errors; DOMException carries a legacy number. */
  code?: string | number;
  name?: string;
  message?: string;
  cause?: unknown;
  /** Node system errors: `connect`, `getaddrinfo`, `read`, … */
  syscall?: string;
  hostname?: string;
  address?: string;
  port?: number;
  /** AggregateError (Node's happy-eyeballs connect reports one error per address). */
  errors?: unknown[];
}

const DNS_NOT_FOUND_CODES = new Set(["ENOTFOUND", "EAI_NONAME", "ENODATA", "EAI_NODATA"]);
const DNS_FAILED_CODES = new Set([
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_SYSTEM",
  "EAI_MEMORY",
  "EAI_FAMILY",
  "EAI_SERVICE",
  "EAI_SOCKTYPE",
  "EAI_BADFLAGS",
  "ESERVFAIL",
  "EFORMERR",
  "EBADNAME",
  "EBADRESP",
  "ENOTIMP",
  "EREFUSED",
  "EBADQUERY",
  "EBADFAMILY",
]);
const CONNECTION_FAILED_CODES = new Set([
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "ECONNABORTED",
  "ENETRESET",
  "EADDRINUSE",
]);
const TLS_CERT_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_CRL",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECRYPT_CRL_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_TLS_CERT_ALTNAME_FORMAT",
]);
const TIMEOUT_CONNECT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT"]);
const TIMEOUT_RESPONSE_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", HERALD_TIMEOUT]);
/**
 * Generic aborts: Herald's sender aborts a request only when its time limit is reached, so they
 * mean `timeout` — unless something more specific appears along the cause chain.
 */
const ABORT_CODES = new Set(["UND_ERR_ABORTED", "ABORT_ERR"]);
const INVALID_RESPONSE_CODES = new Set([
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_INVALID_RESPONSE",
  "UND_ERR_HEADERS_OVERFLOW",
  "UND_ERR_RES_EXCEEDED_MAX_SIZE",
  "HPE_INVALID_CONSTANT",
]);

function asErrorLike(value: unknown): ErrorLike | null {
  return typeof value === "object" && value !== null ? (value as ErrorLike) : null;
}

/** The error itself, then its `cause` chain and the first member of an AggregateError (bounded). */
function chain(err: ErrorLike): ErrorLike[] {
  const out: ErrorLike[] = [];
  const seen = new Set<unknown>();
  let current: ErrorLike | null = err;
  for (let depth = 0; current !== null && depth < 8 && !seen.has(current); depth++) {
    seen.add(current);
    out.push(current);
    const next: ErrorLike | null = asErrorLike(current.cause) ?? asErrorLike(current.errors?.[0]);
    current = next;
  }
  return out;
}

function keyForCode(code: string, syscall: string | undefined): ErrorCatalogKey | null {
  if (code === HERALD_SSRF_BLOCKED) return "ssrf_private_address";
  if (code === HERALD_RESPONSE_TOO_LARGE) return "response_too_large";
  if (DNS_NOT_FOUND_CODES.has(code)) return "dns_not_found";
  if (DNS_FAILED_CODES.has(code)) return "dns_failed";
  if (syscall === "getaddrinfo" || syscall?.startsWith("query") === true) return "dns_failed";
  if (code === "ECONNREFUSED") return "connection_refused";
  if (code === "ECONNRESET") return "connection_reset";
  if (code === "EPIPE" || code === "UND_ERR_SOCKET") return "connection_closed";
  if (CONNECTION_FAILED_CODES.has(code)) return "connection_failed";
  if (code === "ETIMEDOUT") return syscall === "connect" ? "timeout_connect" : "timeout_response";
  if (TIMEOUT_CONNECT_CODES.has(code)) return "timeout_connect";
  if (TIMEOUT_RESPONSE_CODES.has(code)) return "timeout_response";
  if (TLS_CERT_CODES.has(code) || code.startsWith("CERT_") || code.startsWith("ERR_TLS_CERT")) {
    return "tls_cert_invalid";
  }
  if (code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_") || code === "EPROTO") return "tls_handshake";
  if (INVALID_RESPONSE_CODES.has(code) || code.startsWith("HPE_")) return "invalid_response";
  return null;
}

function keyForName(name: string): ErrorCatalogKey | null {
  if (name === "TimeoutError") return "timeout_response";
  if (name === "ConnectTimeoutError") return "timeout_connect";
  if (name === "HeadersTimeoutError" || name === "BodyTimeoutError") return "timeout_response";
  return null;
}

function codeOf(err: ErrorLike): string | undefined {
  return typeof err.code === "string" && err.code !== "" ? err.code : undefined;
}

function specificsOf(err: ErrorLike, code: string | undefined): string {
  const message = typeof err.message === "string" ? oneLine(err.message) : "";
  // Herald's own codes are internal: the message says it all.
  if (code === undefined || (code.startsWith("HERALD_") && message !== "")) return message;
  if (message === "") return code;
  return message.includes(code) ? message : `${message} (${code})`;
}

/**
 * Maps anything a POST can throw to a kind and a detail. Looks at `code` (Node system errors,
 * undici `UND_ERR_*`, OpenSSL `CERT_*`/`ERR_TLS_*`/`ERR_SSL_*`, Herald's own
 * `HERALD_SSRF_BLOCKED`/`HERALD_RESPONSE_TOO_LARGE`/`HERALD_TIMEOUT`), then `name`, along the
 * `cause` chain. Aborts count as timeouts: Herald's sender aborts a request only when its time
 * limit is reached. Anything unrecognised is `unknown` with the error's message as specifics.
 */
export function classifyError(err: ErrorLike): ClassifiedError {
  const links = chain(err);
  let abort: ErrorLike | null = null;
  for (const link of links) {
    if (link.name === "AbortError") abort ??= link;
    const code = codeOf(link);
    if (code === undefined) continue;
    if (ABORT_CODES.has(code)) {
      abort ??= link;
      continue;
    }
    const key = keyForCode(code, link.syscall);
    if (key !== null) return catalogError(key, specificsOf(link, code));
  }
  for (const link of links) {
    if (typeof link.name !== "string") continue;
    const key = keyForName(link.name);
    if (key !== null) return catalogError(key, specificsOf(link, codeOf(link)));
  }
  if (abort !== null) return catalogError("timeout_response", specificsOf(abort, codeOf(abort)));
  const first = links.find((l) => codeOf(l) !== undefined);
  const specifics =
    specificsOf(err, first === undefined ? undefined : codeOf(first)) ||
    (typeof err.name === "string" ? err.name : "");
  return catalogError("unknown", specifics === "" ? null : specifics);
}

/**
 * Kind and detail of a final HTTP status; `null` for 2xx (success). 3xx → kind `"4xx"` with
 * `redirect_not_followed` (see {@link ERROR_CATALOG}); 4xx → `"4xx"`; 5xx → `"5xx"`; anything
 * else (1xx as a final status, ≥ 600) → `"unknown"`. `specifics` defaults to `HTTP <status>`.
 */
export function classifyStatus(status: number, specifics?: string): ClassifiedError | null {
  if (status >= 200 && status <= 299) return null;
  const text = specifics ?? `HTTP ${status}`;
  if (status >= 300 && status <= 399) return catalogError("redirect_not_followed", text);
  if (status >= 400 && status <= 499) return catalogError("http_4xx", text);
  if (status >= 500 && status <= 599) return catalogError("http_5xx", text);
  return catalogError("http_unexpected_status", text);
}
