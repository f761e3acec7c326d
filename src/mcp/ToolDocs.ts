/** Renders docs/tools.md from the tool registry, so the documentation cannot drift from what the server offers. */
import type { Tool } from "./Server.js"

interface JsonSchemaNode {
  readonly type?: unknown
  readonly description?: unknown
  readonly properties?: Readonly<Record<string, JsonSchemaNode>>
  readonly required?: ReadonlyArray<string>
  readonly anyOf?: ReadonlyArray<JsonSchemaNode>
  readonly enum?: ReadonlyArray<unknown>
  readonly items?: JsonSchemaNode
}

const typeOf = (s: JsonSchemaNode): string => {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" \\| ")
  if (s.anyOf) return s.anyOf.map(typeOf).join(" \\| ")
  if (s.type === "array") return `${s.items ? typeOf(s.items) : "unknown"}[]`
  return typeof s.type === "string" ? s.type : "any"
}

const fields = (schema: JsonSchemaNode): Array<string> => {
  const props = Object.entries(schema.properties ?? {})
  if (props.length === 0) return ["_none_"]
  const required = new Set(schema.required ?? [])
  return [
    "| field | type | required | description |",
    "|---|---|---|---|",
    ...props.map(([name, s]) =>
      `| \`${name}\` | ${typeOf(s)} | ${required.has(name) ? "yes" : "no"} | ${
        typeof s.description === "string" ? s.description : ""
      } |`
    )
  ]
}

export const renderToolDocs = (tools: ReadonlyArray<Tool<unknown>>): string =>
  [
    "# Tools",
    "",
    "Generated from the tool registry by `npm run docs:tools`; do not edit by hand.",
    "",
    "Errors are results with `isError: true` whose text is `<ErrorTag>: <message>`, a `Hint:` line and the error's fields as JSON.",
    "",
    ...tools.flatMap((t) => {
      const a = t.annotations
      const hints = [
        a.readOnlyHint ? "read-only" : "changes state",
        a.destructiveHint ? "destructive" : null,
        a.idempotentHint ? "idempotent" : null
      ]
        .filter((x) => x !== null)
        .join(", ")
      return [
        `## \`${t.name}\` — ${t.title}`,
        "",
        t.description,
        "",
        `_${hints}_`,
        "",
        "**Input**",
        "",
        ...fields(t.inputSchema as JsonSchemaNode),
        "",
        "**Output** (`structuredContent`)",
        "",
        ...fields(t.outputSchema as JsonSchemaNode),
        ""
      ]
    })
  ].join("\n")
