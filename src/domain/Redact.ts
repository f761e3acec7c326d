/**
 * Secrets in URLs are used, never shown (DESIGN §6): a URL the bridge prints has its password, and the values of
 * query parameters that look like credentials, replaced by `***`. `credentialsOf` splits a URL into the URL without
 * its user info and the `user:password` to send as Basic auth.
 */
import { Option, Redacted } from "effect"

const SECRET_PARAM = /(token|key|secret|pass|password|pwd|auth|sig|signature|credential|session)/i

/** A URL with its password and credential-like query values as `***` (text that is not a URL is returned as is). */
export const redactUrl = (url: string): string => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return redactUrlsIn(url)
  }
  if (u.password === "" && u.search === "") return url
  if (u.password !== "") u.password = "***"
  const secretParams = [...u.searchParams.keys()].some((k) => SECRET_PARAM.test(k))
  const search = !secretParams ? u.search : `?${
    [...u.searchParams.entries()]
      .map(([k, v]) => `${encodeURIComponent(k)}=${SECRET_PARAM.test(k) ? "***" : encodeURIComponent(v)}`)
      .join("&")
  }`
  const hash = u.hash
  u.search = ""
  u.hash = ""
  const base = u.toString()
  // `new URL` adds a "/" to a bare origin: keep the URL as it was written.
  const path = u.pathname === "/" && !/^[a-z][a-z0-9+.-]*:\/\/[^/]*\/(?:[?#]|$)/i.test(url) ? base.slice(0, -1) : base
  return `${path}${search}${hash}`
}

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi

/** `scheme://user:password@`, the password being anything up to the `@` but spaces and URL delimiters. */
const USER_INFO = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:"'<>]*):[^\s/?#@]*@/gi

/** Every URL in a text redacted (error messages, log lines, child stderr); over-redacting beats leaking. */
export const redactUrlsIn = (text: string): string =>
  text.includes("://")
    ? text.replace(USER_INFO, "$1:***@").replace(URL_IN_TEXT, (m) => {
      try {
        new URL(m)
      } catch {
        return m
      }
      return redactUrl(m)
    })
    : text

/** The URL without its user info, and the user info (decoded `user:password`) if it had any. */
export const credentialsOf = (
  url: string
): { readonly url: string; readonly basic: Option.Option<Redacted.Redacted<string>> } => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return { url, basic: Option.none() }
  }
  if (u.username === "" && u.password === "") return { url, basic: Option.none() }
  const basic = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`
  u.username = ""
  u.password = ""
  return { url: u.toString().replace(/\/+$/, ""), basic: Option.some(Redacted.make(basic)) }
}

/** The Authorization header value of Basic credentials. */
export const basicAuthorization = (basic: Redacted.Redacted<string>): string =>
  `Basic ${Buffer.from(Redacted.value(basic), "utf8").toString("base64")}`
