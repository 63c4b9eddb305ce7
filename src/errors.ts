/**
 * Every error Herald returns to a client, declared once with a stable code and an HTTP status.
 * The codes are listed in docs/errors.md.
 */
export const ERROR_CODES = {
  bad_request: 400,
  invalid_json: 400,
  unknown_field: 400,
  invalid_field: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  out_of_range: 422,
  invalid_url: 422,
  limit_exceeded: 422,
  unavailable: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "HeraldError";
    this.code = code;
    this.status = ERROR_CODES[code];
  }
}

export const notFound = (what: string, id: string | number) =>
  new HeraldError("not_found", `${what} ${id} not found`);
