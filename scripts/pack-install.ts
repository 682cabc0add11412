/**
 * Installs the packages the way a user gets them, and checks they work there.
 *
 * 1. `pnpm pack` every publishable package (the workspace must be built:
 *    `tsc -b` writes each package's `dist/`).
 * 2. Lints each tarball with `publint` (package.json fields, exports that
 *    point at files that exist) and `@arethetypeswrong/cli` (the types
 *    resolve for ESM consumers under `node16` and bundler resolution).
 * 3. Installs the tarballs with npm into a fresh project outside the
 *    workspace, with `effect` and `@effect/platform-node` from the registry.
 * 4. Type-checks there every `ts` block of README.md and of each package's
 *    README (a block is a complete program: imports included), then runs the
 *    blocks that start with the line `// run`, each with a time limit.
 *
 * Usage: node scripts/pack-install.ts [--keep]   (--keep leaves the project in place)
 */
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const keep = process.argv.includes("--keep")
const bin = (name: string) => join(root, "node_modules", ".bin", name)
const pnpm = ["-y", "pnpm@10.34.9"]

const step = (title: string) => console.log(`\n== ${title}`)
const run = (cmd: string, args: ReadonlyArray<string>, cwd: string, timeout = 300_000) => {
  const result = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout, env: process.env })
  if (result.status !== 0) {
    console.error(`${cmd} ${args.join(" ")} (in ${cwd}) failed${result.signal ? ` with ${result.signal}` : ""}`)
    console.error(`${result.stdout ?? ""}${result.stderr ?? ""}`)
    process.exit(1)
  }
  return result.stdout
}

interface Manifest {
  readonly name: string
  readonly version: string
  readonly private?: boolean
  readonly peerDependencies?: Record<string, string>
  readonly devDependencies?: Record<string, string>
}

const packages = readdirSync(join(root, "packages"))
  .map((dir) => ({ dir: join(root, "packages", dir) }))
  .filter(({ dir }) => existsSync(join(dir, "package.json")))
  .map(({ dir }) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest }))
  .filter(({ manifest }) => manifest.private !== true)

const work = mkdtempSync(join(tmpdir(), "sluice-pack-"))
const tarballs = join(work, "tarballs")
mkdirSync(tarballs)

// What is packed is `dist/`: built here, so a stale build is never what gets checked.
step("build (tsc -b)")
run(bin("tsc"), ["-b"], root, 600_000)

step(`pack ${packages.map((p) => p.manifest.name).join(", ")}`)
const packed = packages.map(({ dir, manifest }) => {
  if (!existsSync(join(dir, "dist", "index.js"))) {
    console.error(`${manifest.name}: dist/index.js is missing; run \`pnpm check\` (tsc -b) first`)
    process.exit(1)
  }
  run("npx", [...pnpm, "pack", "--pack-destination", tarballs], dir)
  const file = readdirSync(tarballs).find((f) =>
    f === `${manifest.name.replace("@", "").replace("/", "-")}-${manifest.version}.tgz`
  )
  if (file === undefined) throw new Error(`no tarball for ${manifest.name}`)
  return { manifest, tarball: join(tarballs, file) }
})

step("publint and arethetypeswrong")
for (const { manifest, tarball } of packed) {
  run(bin("publint"), ["--strict", tarball], root)
  // ESM only: CommonJS `require` is not offered, so only ESM resolutions are checked.
  run(bin("attw"), ["--profile", "esm-only", "--format", "ascii", tarball], root)
  console.log(`${manifest.name}: ok`)
}

step("install the tarballs into a fresh project with npm")
const project = join(work, "project")
mkdirSync(project)
const peers = Object.assign({}, ...packed.map(({ manifest }) => manifest.peerDependencies ?? {})) as Record<
  string,
  string
>
// The versions the workspace develops against (each package's devDependencies), else the peer range.
const devVersions = Object.assign({}, ...packed.map(({ manifest }) => manifest.devDependencies ?? {})) as Record<
  string,
  string
>
const dependencies: Record<string, string> = {}
for (const [name, range] of Object.entries(peers)) dependencies[name] = devVersions[name] ?? range
for (const { manifest, tarball } of packed) dependencies[manifest.name] = `file:${tarball}`

// Every ```ts block of README.md and of each package's README.
const readmes = [join(root, "README.md"), ...packages.map(({ dir }) => join(dir, "README.md"))].filter(existsSync)
const blocks = readmes.flatMap((file) =>
  [...readFileSync(file, "utf8").matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => ({ file, code: m[1]! }))
)
// A test-kit example imports the test runner a user of the kit has: the workspace's versions.
const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Manifest
const devDependencies: Record<string, string> = {}
for (const name of ["@effect/vitest", "vitest"]) {
  if (blocks.some(({ code }) => code.includes(`from "${name}"`))) {
    devDependencies[name] = rootManifest.devDependencies?.[name] ?? "latest"
  }
}
writeFileSync(
  join(project, "package.json"),
  JSON.stringify({ name: "sluice-user", private: true, type: "module", dependencies, devDependencies }, null, 2)
)
run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project, 600_000)

step("type-check and run the README examples")

blocks.forEach(({ code }, n) => writeFileSync(join(project, `example${n}.ts`), `${code}\nexport {}\n`))
writeFileSync(
  join(project, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      target: "es2024",
      lib: ["es2024"],
      module: "nodenext",
      moduleResolution: "nodenext",
      types: ["node"],
      strict: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      // As most users set it: effect's declarations name DOM types that a Node project lacks.
      skipLibCheck: true,
      allowImportingTsExtensions: true
    },
    include: ["*.ts"]
  })
)
// Types for node:* come from the workspace's @types/node (not a user dependency).
mkdirSync(join(project, "node_modules", "@types"), { recursive: true })
execFileSync("cp", [
  "-r",
  join(root, "node_modules", "@types", "node"),
  join(project, "node_modules", "@types", "node")
])
if (blocks.length > 0) run(bin("tsc"), ["-p", project, "--pretty", "false"], project)
let ran = 0
for (const [n, { code, file }] of blocks.entries()) {
  if (!code.startsWith("// run")) continue
  run(bin("node"), [`example${n}.ts`], project, 60_000)
  ran++
  console.log(`ran the example ${n} of ${file.slice(root.length + 1)}`)
}
console.log(`${blocks.length} README examples type-check against the installed tarballs; ${ran} ran`)

if (keep) console.log(`project kept in ${project}`)
else rmSync(work, { recursive: true, force: true })
