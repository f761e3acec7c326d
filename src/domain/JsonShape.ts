/**
 * Building blocks for Schemas whose Type is the bridge's (camelCase, `undefined` for "not known") and whose encoded
 * form is the JSON the faces print (snake_case keys, `null` for "not known", every key present): one Schema per shape
 * serves the MCP `outputSchema`, the structured tool result and the CLI's `--json`.
 */
import { Option, Schema } from "effect"

/** `A | undefined` in the bridge, `A | null` in JSON. */
export const nullable = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.transform(Schema.NullOr(schema), Schema.UndefinedOr(Schema.typeSchema(schema)), {
    strict: true,
    decode: (v) => v ?? undefined,
    encode: (v) => v ?? null
  })

/** A property named `key` in JSON. */
export const wireKey = <Key extends string, A, I>(key: Key, schema: Schema.Schema<A, I>) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))

/** An optional property of the bridge (`?: A`) that JSON always has, `null` when absent, named `key`. */
export const optionalAsNull = <Key extends string, A, I>(key: Key, schema: Schema.Schema<A, I>) =>
  Schema.requiredToOptional(Schema.NullOr(schema), Schema.UndefinedOr(Schema.typeSchema(schema)), {
    decode: (v) => Option.fromNullable(v),
    encode: (o) => Option.getOrNull(Option.flatMap(o, Option.fromNullable))
  }).pipe(Schema.fromKey(key))
