/**
 * Model names as users type them, checked before any I/O (DESIGN §6 "Validation"), and matched against what
 * LM Studio reports (instance identifiers `key:2`, variants `key@q4_k_m`, keys with the publisher dropped).
 */
import { Effect } from "effect"
import { InvalidModelName } from "./Errors.js"

const MAX_MODEL_NAME_LENGTH = 256

/** Returns the problem with a model name, or undefined when it is acceptable. */
export const checkModelName = (name: string): string | undefined => {
  if (name.length === 0) return "it is empty"
  if (name.trim().length === 0) return "it is only whitespace"
  if (name !== name.trim()) return "it has leading or trailing whitespace"
  if (name.length > MAX_MODEL_NAME_LENGTH) return `it is longer than ${MAX_MODEL_NAME_LENGTH} characters`

  if (/[\u0000-\u001f\u007f]/.test(name)) return "it contains control characters"
  if (name.startsWith("-")) return "it starts with '-', which the lms CLI would read as a flag"
  if (name.split(/[\\/]/).some((segment) => segment === ".." || segment === ".")) return "it contains a path traversal"
  if (name.startsWith("/") || name.startsWith("\\")) return "it is an absolute path"
  return undefined
}

export const validateModelName = (name: string): Effect.Effect<string, InvalidModelName> => {
  const reason = checkModelName(name)
  return reason === undefined ? Effect.succeed(name) : Effect.fail(new InvalidModelName({ model: name, reason }))
}

/** The part of an identifier that names the model: `pub/key:2` → `pub/key`, `key@q4_k_m` → `key`. */
const baseKey = (identifier: string): string =>
  identifier
    .replace(/:\d+$/, "")
    .replace(/@[^/@]*$/, "")
    .toLowerCase()

const lastSegment = (s: string): string => s.slice(s.lastIndexOf("/") + 1)

/**
 * Does the model LM Studio served correspond to the one requested? Lenient about the forms LM Studio reports for
 * one model (protocol §9.2): instance suffix `:N`, variant suffix `@quant`, publisher prefix dropped, case.
 */
export const sameModel = (requested: string, served: string): boolean => {
  const a = baseKey(requested)
  const b = baseKey(served)
  if (a === b) return true
  if (!a.includes("/") || !b.includes("/")) return lastSegment(a) === lastSegment(b)
  return false
}

/** Levenshtein distance, bounded work for names of at most a few hundred characters. */
const editDistance = (a: string, b: string): number => {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return prev[b.length]!
}

/** The available names closest to `name`: substring matches first, then small edit distances. */
export const closestMatches = (name: string, available: ReadonlyArray<string>, limit = 3): Array<string> => {
  const needle = name.toLowerCase()
  const scored = available.map((candidate) => {
    const c = candidate.toLowerCase()
    const contains = c.includes(needle) || needle.includes(lastSegment(c))
    const distance = Math.min(editDistance(needle, c), editDistance(lastSegment(needle), lastSegment(c)))
    return { candidate, score: contains ? 0 : distance }
  })
  const threshold = Math.max(3, Math.floor(needle.length / 3))
  return scored
    .filter((s) => s.score <= threshold)
    .sort((x, y) => x.score - y.score || x.candidate.localeCompare(y.candidate))
    .slice(0, limit)
    .map((s) => s.candidate)
}
