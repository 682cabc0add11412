/**
 * Checks that imports run one way (CONVENTIONS.md, "Modules"): no loop of
 * value imports between the source files of the packages. A public module
 * imports its internal modules; an internal module may `import type` from
 * a public one, and may use the values of other public modules lower in the
 * stack, but never of one that imports it back.
 *
 * `import type` and `import { type A }` are erased and do not count; every
 * other relative import or re-export does. A loop fails with the files and
 * the import that closes it.
 *
 * Usage: node scripts/check-modules.ts
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

const sources = (): Array<string> => {
  const files: Array<string> = []
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) files.push(path)
    }
  }
  for (const pkg of readdirSync(join(root, "packages"))) {
    const src = join(root, "packages", pkg, "src")
    if (statSync(src, { throwIfNoEntry: false })?.isDirectory()) walk(src)
  }
  return files
}

// One import or re-export statement with a relative specifier (the files are
// formatted by dprint: statements start a line, specifiers are double-quoted).
const statement = /^(?:import|export)\s+(type\s+)?((?:(?!^(?:import|export)\b)[\s\S])*?)\s*from\s+"(\.[^"]+)"/gm

/** The files `file` imports values from. */
export const valueImports = (file: string, text: string, known: ReadonlySet<string>): Array<string> => {
  const out: Array<string> = []
  for (const match of text.matchAll(statement)) {
    if (match[1] !== undefined) continue
    const names = match[2]!.trim()
    if (names.startsWith("{")) {
      const parts = names.slice(1, -1).split(",").map((n) => n.trim()).filter((n) => n !== "")
      if (parts.length > 0 && parts.every((n) => n.startsWith("type "))) continue
    }
    const target = normalize(join(dirname(file), match[3]!))
    if (known.has(target)) out.push(target)
  }
  return out
}

/** Strongly connected components of more than one file (Tarjan). */
export const loops = (graph: ReadonlyMap<string, ReadonlyArray<string>>): Array<Array<string>> => {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const found: Array<Array<string>> = []
  let next = 0
  const visit = (v: string) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: Array<string> = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) found.push(component.toSorted())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/** Why the file's module comment is missing or misplaced, or `undefined` when it is in place. */
export const moduleCommentProblem = (text: string): string | undefined => {
  const lines = text.replace(/^#!.*\n/, "").split("\n")
  if (lines[0] !== "/**") return "does not start with its module comment (/** … */)"
  const end = lines.findIndex((line) => line.trimEnd() === "*/" || line.trimEnd() === " */")
  if (end === -1) return "has an unterminated module comment"
  const next = lines.slice(end + 1).find((line) => line.trim() !== "")
  if (next === undefined || /^(import|export \*|export \{[^}]*\} from|\/\*\*)/.test(next)) return undefined
  return `has a module comment that documents the first declaration instead (${
    next.trim().slice(0, 40)
  }…): add the declaration's own comment`
}

const main = () => {
  const files = sources()
  const known = new Set(files)
  const texts = new Map(files.map((f) => [f, readFileSync(f, "utf8")]))
  const misplaced = files.flatMap((f) => {
    const problem = moduleCommentProblem(texts.get(f)!)
    return problem === undefined ? [] : [`${relative(root, f)} ${problem}`]
  })
  for (const line of misplaced) console.error(line)
  const graph = new Map(files.map((f) => [f, valueImports(f, texts.get(f)!, known)]))
  const found = loops(graph)
  if (found.length === 0 && misplaced.length === 0) {
    console.log(`${files.length} modules: each starts with its module comment; no import loop`)
    return
  }
  for (const component of found) {
    console.error(`import loop: ${component.map((f) => relative(root, f)).join(", ")}`)
    for (const a of component) {
      for (const b of graph.get(a)!) {
        if (component.includes(b)) console.error(`  ${relative(root, a)} imports ${relative(root, b)}`)
      }
    }
  }
  if (found.length > 0) {
    console.error(
      `\n${found.length} import loop(s): move the shared value into the internal module (see CONVENTIONS.md)`
    )
  }
  if (misplaced.length > 0) console.error(`\n${misplaced.length} module(s) without their module comment first`)
  process.exit(1)
}

main()
