/**
 * Requests checked against the one description of the run API, the OpenAPI document (openapi.ts): a route's query
 * parameters and JSON body are validated by ajv with the document's own schemas (defaults filled in), and the first
 * problem is answered 400 INVALID_PARAMS naming the field. One exception: the workflow inside a create request is
 * documented there but checked by validateWorkflow, which names stage and field and knows this runner's drivers
 * (400 INVALID_SPEC).
 */
import { ApiError } from "@flowmeter/shared";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import type { Request } from "express";
import { OPENAPI_DOCUMENT } from "./openapi.js";

type Schema = Record<string, unknown>;
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema: Schema;
}
type ParameterOrRef = Parameter | { $ref: string };
interface Operation {
  parameters?: readonly ParameterOrRef[];
  requestBody?: { content: { "application/json": { schema: Schema } } };
}

const DOCUMENT_ID = "flowmeter-runner-api";
const ajv = new Ajv2020({ strict: false, allErrors: true, useDefaults: true, verbose: true });
/** Which problem to name when there are several: the plainest first ("must be an object" before "exactly one of"). */
const KEYWORD_ORDER = ["type", "additionalProperties", "required", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern"];
ajv.addSchema(OPENAPI_DOCUMENT, DOCUMENT_ID);

/** The document's local references made absolute, so a schema taken out of it still resolves them. */
function anchored(schema: unknown): Schema {
  return JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', `"$ref":"${DOCUMENT_ID}#/`)) as Schema;
}

function resolveParameter(parameter: ParameterOrRef): Parameter {
  if (!("$ref" in parameter)) return parameter;
  const name = parameter.$ref.split("/").at(-1) ?? "";
  return (OPENAPI_DOCUMENT.components.parameters as Record<string, Parameter>)[name] as Parameter;
}

function fieldName(error: ErrorObject): string {
  const path = error.instancePath.split("/").slice(1).join(".");
  return path === "" ? "request body" : path;
}

function typeName(type: unknown): string {
  const names: Record<string, string> = {
    object: "a JSON object",
    array: "a list",
    string: "a string",
    integer: "an integer",
    number: "a number",
    boolean: "true or false",
  };
  return (Array.isArray(type) ? type : [type]).map((one) => names[String(one)] ?? String(one)).join(" or ");
}

/** A sentence for the first ajv error, naming the field as the client sent it. */
function describe(error: ErrorObject, data: unknown): string {
  const field = fieldName(error);
  const schema = (error.parentSchema ?? {}) as {
    type?: unknown;
    minimum?: number;
    maximum?: number;
    minLength?: number;
    maxLength?: number;
    pattern?: string;
    description?: string;
    enum?: unknown[];
    properties?: Schema;
    oneOf?: Schema[];
  };
  switch (error.keyword) {
    case "additionalProperties": {
      const extra = String((error.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys(schema.properties ?? {}).join(", ");
      return `${field === "request body" ? "" : `${field}: `}unknown field ${JSON.stringify(extra.slice(0, 100))} (known: ${known})`;
    }
    case "oneOf": {
      const choices = (schema.oneOf ?? []).flatMap((branch) => (branch["required"] ?? []) as string[]);
      return `send exactly one of ${choices.join(" and ")}`;
    }
    case "required":
      return `${String((error.params as { missingProperty: string }).missingProperty)} is required`;
    case "type":
    case "minimum":
    case "maximum":
      return schema.minimum !== undefined && schema.maximum !== undefined
        ? `${field} must be ${typeName(schema.type)} between ${schema.minimum} and ${schema.maximum}`
        : error.keyword === "type"
          ? `${field} must be ${typeName(schema.type)}`
          : `${field} ${error.message ?? "is out of range"}`;
    case "minLength":
    case "maxLength":
      return `${field} must be ${schema.minLength ?? 0}-${schema.maxLength ?? "any number of"} characters`;
    case "enum":
      return `${field} must be one of ${(schema.enum ?? []).map(String).join(", ")}, not ${JSON.stringify(String(valueAt(data, error.instancePath)).slice(0, 50))}`;
    case "pattern":
      return `${field} must match ${schema.pattern ?? ""}${schema.description === undefined ? "" : ` (${schema.description})`}`;
    default:
      return `${field} ${error.message ?? "is invalid"}`;
  }
}

function valueAt(data: unknown, pointer: string): unknown {
  return pointer
    .split("/")
    .slice(1)
    .reduce<unknown>((value, key) => (value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined), data);
}

function rank(error: ErrorObject): number {
  const index = KEYWORD_ORDER.indexOf(error.keyword);
  return index === -1 ? KEYWORD_ORDER.length : index;
}

function check(validate: ValidateFunction, data: unknown): void {
  if (validate(data)) return;
  // Errors inside a oneOf branch only explain why that branch did not match; the oneOf error itself says what to send.
  const errors = (validate.errors ?? []).filter((error) => !error.schemaPath.includes("/oneOf/"));
  const [first] = errors.sort((a, b) => rank(a) - rank(b));
  throw new ApiError("INVALID_PARAMS", describe(first as ErrorObject, data));
}

export interface ValidatedRequest {
  /** Query parameters the operation documents, typed and with their defaults. */
  query: Record<string, unknown>;
  /** The JSON body, when the operation takes one. */
  body: unknown;
}

/** Validates requests of one documented operation: `request(req)` answers its query and body or throws INVALID_PARAMS. */
export function operation(path: keyof typeof OPENAPI_DOCUMENT.paths, method: "get" | "post"): (req: Request) => ValidatedRequest {
  const documented = (OPENAPI_DOCUMENT.paths[path] as Record<string, Operation>)[method];
  if (documented === undefined) throw new Error(`${method.toUpperCase()} ${path} is not in the OpenAPI document`);
  const parameters = (documented.parameters ?? []).map(resolveParameter).filter((parameter) => parameter.in === "query");
  const validateQuery = ajv.compile({
    type: "object",
    properties: Object.fromEntries(parameters.map((parameter) => [parameter.name, anchored(parameter.schema)])),
    required: parameters.filter((parameter) => parameter.required === true).map((parameter) => parameter.name),
  });
  const bodySchema = documented.requestBody?.content["application/json"].schema;
  const validateBody = bodySchema === undefined ? undefined : ajv.compile(withOpaqueWorkflow(anchored(bodySchema)));

  return (req) => {
    const raw = req.query as Record<string, unknown>;
    const query: Record<string, unknown> = {};
    for (const parameter of parameters) {
      const value = raw[parameter.name];
      if (value === undefined) continue;
      if (typeof value !== "string") throw new ApiError("INVALID_PARAMS", `${parameter.name} must be given once, as a plain value`);
      if (parameter.schema["type"] === "integer") {
        if (!/^-?\d{1,15}$/.test(value))
          throw new ApiError("INVALID_PARAMS", `${parameter.name} must be an integer, not ${JSON.stringify(value.slice(0, 50))}`);
        query[parameter.name] = Number(value);
      } else if (parameter.schema["type"] === "boolean") {
        if (value !== "true" && value !== "false")
          throw new ApiError("INVALID_PARAMS", `${parameter.name} must be true or false, not ${JSON.stringify(value.slice(0, 50))}`);
        query[parameter.name] = value === "true";
      } else query[parameter.name] = value;
    }
    check(validateQuery, query);
    const body: unknown = validateBody === undefined ? undefined : (req.body ?? {});
    if (validateBody !== undefined) check(validateBody, body);
    return { query, body };
  };
}

/** A schema whose `workflow` property accepts anything: validateWorkflow checks it (see the module comment). */
function withOpaqueWorkflow(schema: Schema): Schema {
  const resolved = (typeof schema["$ref"] === "string" ? valueAt(OPENAPI_DOCUMENT, schema["$ref"].slice(DOCUMENT_ID.length + 1)) : schema) as Schema;
  const properties = resolved["properties"] as Schema | undefined;
  if (properties?.["workflow"] === undefined) return schema;
  return anchored({ ...resolved, properties: { ...properties, workflow: {} } });
}
