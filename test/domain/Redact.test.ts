/**
 * URL secrets (issue 14): a password or a credential-like query value never survives redaction, wherever the URL sits
 * in a text; the credentials split off a URL are the ones it carried.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc, Option, Redacted } from "effect"
import { basicAuthorization, credentialsOf, redactUrl, redactUrlsIn } from "../../src/domain/Redact.js"

const secret = fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=-]{6,24}$/).filter((s) => !s.includes("*"))
const user = fc.stringMatching(/^[a-z]{1,8}$/)
const host = fc.constantFrom("127.0.0.1:1234", "lmstudio.local", "[::1]:8080", "example.com")

describe("URL secrets", () => {
  it.prop("a password in a URL is never shown, in the URL or in any text around it", {
    user,
    password: secret,
    host,
    before: fc.string({ maxLength: 20 }).filter((s) => !s.includes("://")),
    path: fc.constantFrom("", "/", "/v1/models", "/api?x=1")
  }, ({ before, host, password, path, user }) => {
    const url = `http://${user}:${password}@${host}${path}`
    assert.notInclude(redactUrl(url), `:${password}@`)
    assert.include(redactUrl(url), `${user}:***@`)
    assert.notInclude(redactUrlsIn(`${before} at ${url}: refused`), `:${password}@`)
    assert.notInclude(redactUrlsIn(`Invalid X="${url}"`), `:${password}@`)
  })

  it.prop("credential-like query values are hidden, others kept", {
    value: secret,
    name: fc.constantFrom("api_key", "token", "access_token", "sig", "password", "apiKey")
  }, ({ name, value }) => {
    const shown = redactUrl(`https://mcp.example.com/sse?${name}=${encodeURIComponent(value)}&page=2`)
    assert.include(shown, `${name}=***`)
    assert.include(shown, "page=2")
    assert.notInclude(shown, encodeURIComponent(value))
  })

  it("a URL without secrets is unchanged; text without URLs is unchanged", () => {
    for (const u of ["http://127.0.0.1:1234", "https://h/mcp?page=2", "http://user@host:1/"]) {
      assert.strictEqual(redactUrl(u), u)
    }
    assert.strictEqual(redactUrlsIn("no url here: a:b@c"), "no url here: a:b@c")
  })

  it("credentialsOf splits user info off the URL, decoded, for Basic auth", () => {
    const { basic, url } = credentialsOf("http://al%40ice:p%3Ass@127.0.0.1:1234/")
    assert.strictEqual(url, "http://127.0.0.1:1234")
    assert.isTrue(Option.isSome(basic))
    const value = Option.getOrThrow(basic)
    assert.strictEqual(Redacted.value(value), "al@ice:p:ss")
    assert.strictEqual(String(value), "<redacted>")
    assert.strictEqual(basicAuthorization(value), `Basic ${Buffer.from("al@ice:p:ss").toString("base64")}`)
    assert.isTrue(Option.isNone(credentialsOf("http://127.0.0.1:1234").basic))
  })
})
