import type { FastifyInstance, FastifyRequest } from "fastify";
import { findJsonProblem, MAX_ID, parseDecimal, textProblem } from "../domain/input-rules.ts";
import { findInexactNumber } from "../domain/json-numbers.ts";
import { HeraldError } from "../errors.ts";

/**
 * The checks every request's input gets before schema validation, for the API and the panel alike
 * (docs/api.md, "Validation rules"):
 * - a JSON body's numbers must be ones JavaScript holds exactly (checked on the raw text);
 * - every string and key of the body, of the path parameters and of the query is storable text
 *   (no NUL, no lone surrogate);
 * - an integer path or query parameter is decimal digits only, at most MAX_ID, and a boolean one `true`
 *   or `false`; they are converted here,
 *   because schema coercion is off (a JSON body's types are never coerced).
 */
export function installInputValidation(app: FastifyInstance): void {
  // Bodies this parser has checked already: the hook below walks only the others (forms).
  const checked = new WeakSet<object>();
  const parseJson = app.getDefaultJsonParser("error", "error") as (
    req: FastifyRequest,
    body: string,
    done: (err: Error | null, value?: unknown) => void,
  ) => void;

  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    parseJson(req, body as string, (err, value) => {
      if (err) return done(err);
      try {
        checkJsonText(body as string, value);
      } catch (e) {
        return done(e as Error);
      }
      if (value !== null && typeof value === "object") checked.add(value);
      done(null, value);
    });
  });

  app.addHook("preValidation", async (req) => {
    checkParts(req.params, "path parameter");
    checkParts(req.query, "query parameter");
    const body = req.body;
    if (!(body !== null && typeof body === "object" && checked.has(body))) checkBody(body);
    convertScalars(req, "params", "path parameter");
    convertScalars(req, "querystring", "query parameter");
  });
}

const clip = (s: string, max = 40) => (s.length > max ? `${s.slice(0, max - 3)}...` : s);

/** A client's name or value in a message: quoted, escaped (a NUL shows as \u0000) and clipped. */
const quote = (s: string, max = 40) => JSON.stringify(clip(s, max));

/** Describes a body location as the schema errors do: `field "events.0.payload"`, or `body`. */
const fieldLabel = (path: string) => (path === "" ? "body" : `field ${quote(path, 200)}`);

// A JSON text without these escapes holds no NUL and no surrogate at all; most bodies skip the walk.
const SUSPECT_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;

function checkJsonText(text: string, value: unknown): void {
  const n = findInexactNumber(text);
  if (n) {
    throw new HeraldError(
      "invalid_field",
      `${fieldLabel(n.path)} holds the number ${clip(n.literal)}, which a JavaScript number cannot hold exactly: ` +
        `integers must be within ±${MAX_ID} and numbers finite (send such a value as a string)`,
    );
  }
  if (SUSPECT_ESCAPE.test(text)) checkBody(value);
}

function checkBody(value: unknown): void {
  if (value === undefined) return;
  const found = findJsonProblem(value, "");
  if (found) throw new HeraldError("invalid_field", `${fieldLabel(found.path)} ${found.problem}`);
}

function checkParts(values: unknown, label: string): void {
  if (values === null || typeof values !== "object") return;
  for (const [name, v] of Object.entries(values)) {
    const problem = textProblem(name);
    if (problem) throw new HeraldError("invalid_field", `${label} name ${quote(name)} ${problem}`);
    const found = findJsonProblem(v, "");
    if (found) throw new HeraldError("invalid_field", `${label} ${quote(name, 100)} ${found.problem}`);
  }
}

type Scalar = "integer" | "boolean";
const scalarFieldsOf = new WeakMap<object, Array<[string, Scalar]>>();

/** The properties a route's params or querystring schema declares as integers or booleans. */
function scalarFields(schema: unknown): Array<[string, Scalar]> {
  if (schema === null || typeof schema !== "object") return [];
  let fields = scalarFieldsOf.get(schema);
  if (!fields) {
    const props = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
    fields = Object.entries(props)
      .filter(([, s]) => s?.type === "integer" || s?.type === "boolean")
      .map(([k, s]) => [k, s.type as Scalar]);
    scalarFieldsOf.set(schema, fields);
  }
  return fields;
}

/** Converts integer (decimal digits only) and boolean (`true` or `false`) path and query parameters. */
function convertScalars(req: FastifyRequest, part: "params" | "querystring", label: string): void {
  const schema = (req.routeOptions.schema as Record<string, unknown> | undefined)?.[part];
  const fields = scalarFields(schema);
  if (fields.length === 0) return;
  const values = (part === "params" ? req.params : req.query) as Record<string, unknown> | undefined;
  if (!values) return;
  for (const [name, type] of fields) {
    const raw = values[name];
    if (raw === undefined) continue;
    const shown = typeof raw === "string" ? quote(raw) : "several values";
    if (type === "boolean") {
      if (raw !== "true" && raw !== "false") {
        throw new HeraldError("invalid_field", `${label} ${quote(name)} must be true or false; got ${shown}`);
      }
      values[name] = raw === "true";
      continue;
    }
    const n = typeof raw === "string" ? parseDecimal(raw) : null;
    if (n === null) {
      throw new HeraldError(
        "invalid_field",
        `${label} ${quote(name)} must be an integer written in decimal digits only, at most ${MAX_ID}; got ${shown}`,
      );
    }
    values[name] = n;
  }
}
