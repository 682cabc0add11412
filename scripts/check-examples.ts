/**
 * Type-checks every `@example` in the TSDoc of the packages' public modules.
 *
 * Each example becomes a file of its own under `tests/build/examples/` (a
 * workspace package that depends on every sluice package, so imports resolve
 * the way a user's do, through the public exports only) and the lot is
 * compiled with the workspace's `tsc`. A broken example fails with the file
 * and line of the comment it came from.
 *
 * Why our own script and not `@effect/docgen`: docgen 0.5 needs the
 * TypeScript 5 compiler API, and this workspace compiles with TypeScript 7,
 * whose compiler has no such API; extracting the blocks is a few lines.
 *
 * Usage: node scripts/check-examples.ts
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const out = join(root, "tests", "build", "examples")

interface Example {
  readonly source: string
  readonly line: number
  readonly code: string
}

/** Public modules: every `.ts` under `packages/<p>/src` except `internal/`. */
const publicModules = (): Array<string> => {
  const files: Array<string> = []
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) {
        if (name !== "internal") walk(path)
      } else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) {
        files.push(path)
      }
    }
  }
  for (const pkg of readdirSync(join(root, "packages"))) {
    const src = join(root, "packages", pkg, "src")
    if (statSync(src, { throwIfNoEntry: false })?.isDirectory()) walk(src)
  }
  return files.toSorted()
}

/** The fenced `ts` blocks that follow an `@example` tag inside `/** … *\/` comments. */
export const extract = (source: string, text: string): Array<Example> => {
  const examples: Array<Example> = []
  const lines = text.split("\n")
  let inExample = false
  let code: Array<string> | undefined
  let start = 0
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const body = line.replace(/^\s*\*\s?/, "")
    if (code !== undefined) {
      if (/^```\s*$/.test(body)) {
        examples.push({ source, line: start + 1, code: code.join("\n") })
        code = undefined
        inExample = false
      } else {
        code.push(body)
      }
      continue
    }
    if (/@example\b/.test(line)) inExample = true
    else if (inExample && /^```(ts|typescript)\s*$/.test(body)) {
      code = []
      start = i + 1
    } else if (inExample && /^@\w+/.test(body)) inExample = false
    else if (/\*\/\s*$/.test(line)) inExample = false
  }
  return examples
}

const main = () => {
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const examples = publicModules().flatMap((file) => extract(relative(root, file), readFileSync(file, "utf8")))
  const origin = new Map<string, Example>()
  examples.forEach((example, n) => {
    const name = `${example.source.replace(/[/.]/g, "_")}_${n}.ts`
    origin.set(name, example)
    // `export {}` makes every example a module of its own, imports or not.
    writeFileSync(join(out, name), `${example.code}\n\nexport {}\n`)
  })
  writeFileSync(
    join(out, "tsconfig.json"),
    JSON.stringify(
      {
        extends: "../../../tsconfig.base.json",
        compilerOptions: {
          noEmit: true,
          composite: false,
          incremental: false,
          declaration: false,
          declarationMap: false,
          // Examples show a value being made; they need not use it.
          noUnusedLocals: false,
          noUnusedParameters: false
        },
        include: ["*.ts"]
      },
      null,
      2
    )
  )
  const tsc = join(root, "node_modules", ".bin", "tsc")
  const result = spawnSync(tsc, ["-p", out, "--pretty", "false"], { encoding: "utf8" })
  const output = `${result.stdout}${result.stderr}`
  if (result.status === 0) {
    console.log(`${examples.length} examples type-check`)
    return
  }
  // Point each error at the comment the example came from.
  const failed = new Set<string>()
  for (const line of output.split("\n")) {
    const match = /^(?:.*\/)?([^/(]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line)
    const example = match === null ? undefined : origin.get(match[1]!)
    if (example === undefined) {
      if (line.trim() !== "") console.error(line)
      continue
    }
    failed.add(match![1]!)
    console.error(`${example.source}:${example.line + Number(match![2]) - 1}: ${match![4]}`)
  }
  console.error(`\n${failed.size} of ${examples.length} examples do not type-check`)
  process.exit(1)
}

main()
