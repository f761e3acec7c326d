/** Model names: validation before any I/O (property-based), matching of LM Studio's identifier forms, suggestions. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc } from "effect"
import { checkModelName, closestMatches, sameModel, validateModelName } from "../../src/domain/ModelName.js"

const keyChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789.-_".split(""))
const segment = fc.array(keyChar, { minLength: 1, maxLength: 20 }).map((cs) => cs.join("")).filter((s) =>
  s !== "." && s !== ".." && !s.startsWith("-")
)
const modelKey = fc.tuple(segment, fc.option(segment, { nil: undefined })).map((
  [a, b]
) => (b === undefined ? a : `${a}/${b}`))

describe("model names", () => {
  it.prop("every plausible model key is accepted", [modelKey], ([key]) => checkModelName(key) === undefined)

  it.prop(
    "control characters anywhere are rejected",
    [modelKey, fc.integer({ min: 0, max: 31 }), fc.nat()],
    ([key, code, at]) => {
      const i = at % (key.length + 1)
      return checkModelName(key.slice(0, i) + String.fromCharCode(code) + key.slice(i)) !== undefined
    }
  )

  it.prop(
    "a leading '-' is rejected (it would become an lms flag)",
    [modelKey],
    ([key]) => checkModelName(`-${key}`) !== undefined
  )

  it.prop(
    "a '..' path segment is rejected",
    [modelKey],
    ([key]) => checkModelName(`${key}/../x`) !== undefined && checkModelName(`../${key}`) !== undefined
  )

  it.prop(
    "names longer than 256 characters are rejected",
    [fc.integer({ min: 257, max: 2000 })],
    ([n]) => checkModelName("a".repeat(n)) !== undefined
  )

  it("rejects empty and whitespace names with a reason", () => {
    assert.strictEqual(checkModelName(""), "it is empty")
    assert.strictEqual(checkModelName("   "), "it is only whitespace")
    assert.strictEqual(checkModelName(" qwen"), "it has leading or trailing whitespace")
    assert.strictEqual(checkModelName("/abs/path"), "it is an absolute path")
  })

  it.effect("validateModelName fails with InvalidModelName carrying the name and reason", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(validateModelName("--keep-loaded"))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        assert.strictEqual(exit.cause.error.model, "--keep-loaded")
        assert.include(exit.cause.error.message, "flag")
      }
      assert.strictEqual(yield* validateModelName("qwen/qwen3-4b"), "qwen/qwen3-4b")
    }))

  it.prop(
    "an instance suffix, a variant suffix or a dropped publisher is still the same model",
    [modelKey, fc.integer({ min: 2, max: 9 })],
    ([key, n]) => {
      const bare = key.replace(/@[^/@]*$/, "")
      return sameModel(bare, `${bare}:${n}`) && sameModel(bare, `${bare}@q4_k_m`) &&
        sameModel(`pub/${bare.split("/").pop()}`, bare.split("/").pop()!)
    }
  )

  it("different models are different", () => {
    assert.isFalse(sameModel("qwen/qwen3-4b", "google/gemma-3-1b"))
    assert.isFalse(sameModel("mistral/not-there", "qwen/qwen3-4b"))
    assert.isFalse(sameModel("a/x", "b/x"))
  })

  it("suggests the closest available names", () => {
    const available = ["qwen/qwen3-4b", "qwen/qwen3-32b", "google/gemma-3-1b", "text-embedding-nomic-embed-text-v1.5"]
    assert.deepStrictEqual(closestMatches("qwen3-4", available).slice(0, 1), ["qwen/qwen3-4b"])
    assert.include(closestMatches("gema-3-1b", available), "google/gemma-3-1b")
    assert.deepStrictEqual(closestMatches("completely-unrelated-name-xyz", available), [])
  })
})
