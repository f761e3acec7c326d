/**
 * The import arrows of src/ against DESIGN §3: faces (cli/, mcp/) → diagnostics/ → agent/ → lmstudio/ →
 * resilience/ → domain/; observability/ may be used from resilience/ up, the configuration (Config.ts, LmStudioHome.ts) from
 * lmstudio/ up; the simulator stands alone (domain/ basics only); no face imports a face; bin.ts composes everything.
 * Reads the import lines of every file, so a new arrow against the rule fails here with the file and the import.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const src = fileURLToPath(new URL("../../src", import.meta.url))

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []
  )

/** The area of a file of src/: its top folder, or the file's own name at the top. */
const areaOf = (file: string): string => {
  const rel = relative(src, file).replace(/\\/g, "/")
  return rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : rel.replace(/\.ts$/, "")
}

const configuration = ["Config", "LmStudioHome"]
const below = (...areas: Array<string>) => new Set(areas)

/** What each area may import, besides itself. */
const allowed: Record<string, ReadonlySet<string>> = {
  bin: below(
    "App",
    "cli",
    "mcp",
    "diagnostics",
    "agent",
    "lmstudio",
    "resilience",
    "domain",
    "observability",
    "simulator",
    ...configuration
  ),
  // The composition of the services (bin.ts and the in-process bench use it): everything below the faces.
  App: below("diagnostics", "agent", "lmstudio", "resilience", "domain", "observability", ...configuration),
  cli: below(
    "diagnostics",
    "agent",
    "lmstudio",
    "resilience",
    "domain",
    "observability",
    "simulator",
    ...configuration
  ),
  mcp: below("diagnostics", "agent", "lmstudio", "resilience", "domain", "observability", ...configuration),
  diagnostics: below("agent", "lmstudio", "resilience", "domain", "observability", ...configuration),
  agent: below("lmstudio", "resilience", "domain", "observability", ...configuration),
  lmstudio: below("resilience", "domain", "observability", ...configuration),
  observability: below("domain", ...configuration),
  Config: below("domain", "LmStudioHome"),
  LmStudioHome: below("domain"),
  // Breakers record their state and transitions (observability/Metrics.ts, which needs nothing above domain/).
  resilience: below("domain", "observability"),
  domain: below(),
  simulator: below("domain")
}

/** Every relative import of a file (static, dynamic and `export … from`), resolved to the file it names. */
const importsOf = (file: string): Array<{ readonly spec: string; readonly target: string }> => {
  const text = readFileSync(file, "utf8")
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^"']*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)
  ].map(
    (m) => m[1] ?? m[2] ?? ""
  )
  return specs
    .filter((s) => s.startsWith("."))
    .map((spec) => ({ spec, target: resolve(dirname(file), spec.replace(/\.js$/, ".ts")) }))
}

describe("layering (DESIGN §3)", () => {
  const files = filesUnder(src)

  it("every area of src/ is known to the rule", () => {
    const unknown = [...new Set(files.map(areaOf))].filter((a) => allowed[a] === undefined)
    assert.deepStrictEqual(unknown, [])
  })

  it("no import points against the layering", () => {
    const violations = files.flatMap((file) => {
      const from = areaOf(file)
      return importsOf(file)
        .map(({ spec, target }) => ({ spec, to: areaOf(target) }))
        .filter(({ to }) => to !== from && !allowed[from]!.has(to))
        .map(({ spec, to }) => `${relative(src, file)} (${from}) imports ${spec} (${to})`)
    })
    assert.deepStrictEqual(violations, [])
  })

  it("the rule itself catches an arrow the wrong way (a domain file importing lmstudio/)", () => {
    assert.isFalse(allowed.domain!.has("lmstudio"))
    assert.isFalse(allowed.cli!.has("mcp"), "a face never imports another face")
    assert.isFalse(allowed.mcp!.has("cli"), "a face never imports another face")
    assert.isTrue(
      importsOf(join(src, "bin.ts")).some((i) => areaOf(i.target) === "mcp"),
      "the import reader sees bin.ts's imports"
    )
  })
})
