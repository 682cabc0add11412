/**
 * Serves the demo page (plain files in ./page, read once at startup).
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const folder = fileURLToPath(new URL("./page/", import.meta.url))

const types: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8"
}

// Same-origin only: the page needs nothing from elsewhere.
const headers = {
  "content-security-policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache"
}

const file = (name: string) => {
  const body = readFileSync(folder + name, "utf8")
  const contentType = types[name.split(".").pop() ?? ""] ?? "application/octet-stream"
  return HttpServerResponse.text(body, { contentType, headers })
}

export const PageRoutes = Layer.unwrap(Effect.sync(() =>
  Layer.mergeAll(
    HttpRouter.add("GET", "/", file("index.html")),
    HttpRouter.add("GET", "/app.js", file("app.js")),
    HttpRouter.add("GET", "/style.css", file("style.css"))
  )
))
