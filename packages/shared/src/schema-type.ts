/**
 * The TypeScript type of what a JSON schema accepts, derived from the schema itself (json-schema-to-ts), so the
 * two cannot disagree. Objects that do not set `additionalProperties: false` accept unknown fields on the wire (a
 * newer producer may add one); their type names only the fields the schema names, so reading a misspelt field is a
 * compile error rather than an `unknown` (maps such as `additionalProperties: { type: "string" }` stay maps).
 */
import type { FromSchema, JSONSchema } from "json-schema-to-ts";

type KnownFields<T> = T extends readonly (infer Item)[]
  ? KnownFields<Item>[]
  : T extends object
    ? { [K in keyof T as string extends K ? (unknown extends T[K] ? never : K) : K]: KnownFields<T[K]> }
    : T;

export type SchemaType<Schema extends JSONSchema> = KnownFields<FromSchema<Schema>>;
