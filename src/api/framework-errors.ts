import http from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ERROR_CODES, type ErrorCode, HeraldError } from "../errors.ts";

/**
 * Errors fastify and Node's HTTP parser answer before any route runs, in Herald's error shape
 * `{error:{code,message}}` like every other answer.
 */

/** The router's own errors (fastify's `frameworkErrors` option): a malformed path, an over-long parameter. */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  let h: HeraldError;
  switch (err.code) {
    case "FST_ERR_BAD_URL":
      h = new HeraldError("bad_request", "the path is not valid percent-encoded UTF-8");
      break;
    case "FST_ERR_MAX_PARAM_LENGTH":
      h = new HeraldError("uri_too_long", "a path segment is longer than 100 characters");
      break;
    default:
      h = new HeraldError("bad_request", "the request could not be routed");
  }
  void reply.code(h.status).send({ error: { code: h.code, message: h.message } });
}

const PARSER_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    code: "headers_too_large",
    message: `the request headers exceed ${Math.floor(http.maxHeaderSize / 1024)} KB`,
  },
  ERR_HTTP_REQUEST_TIMEOUT: { code: "request_timeout", message: "the request took too long to arrive" },
};

/**
 * Node's `clientError` (fastify's `clientErrorHandler`): the HTTP parser refused the request, so there
 * is no request object; the answer is written on the socket, which is then closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const known = err.code ? PARSER_ERRORS[err.code] : undefined;
  const { code, message } = known ?? { code: "bad_request" as const, message: "malformed HTTP request" };
  const status = ERROR_CODES[code];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
