/**
 * Reading V8 heap snapshots (`.heapsnapshot`, as written by `v8.writeHeapSnapshot`) into
 * per-constructor counts and self sizes, and diffing two of them.
 *
 * Enough to answer "what does one more connection leave on the heap", which is what the
 * memory tools of this folder ask: retained sizes are not computed (self sizes, summed by
 * constructor, already show which objects grow with the connections).
 */
import { readFileSync } from "node:fs"

/** Objects of one kind: count and bytes (self sizes). */
export interface Group {
  readonly key: string
  count: number
  bytes: number
}

interface RawSnapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: ReadonlyArray<string>
      readonly node_types: ReadonlyArray<unknown>
      readonly edge_fields: ReadonlyArray<string>
      readonly edge_types: ReadonlyArray<unknown>
      readonly location_fields: ReadonlyArray<string>
    }
  }
  readonly nodes: ReadonlyArray<number>
  readonly edges: ReadonlyArray<number>
  readonly locations: ReadonlyArray<number>
  readonly strings: ReadonlyArray<string>
}

const short = (url: string) =>
  url.replace(/^.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, "").replace(/^.*\/packages\//, "")

/**
 * Groups a snapshot's nodes by `type:name`: closures by their function's name, or, for
 * anonymous ones, by where the function is defined (`closure@file:line`); strings together.
 */
export const groups = (path: string): Map<string, Group> => {
  const raw = JSON.parse(readFileSync(path, "utf8")) as RawSnapshot
  const meta = raw.snapshot.meta
  const fields = meta.node_fields
  const types = meta.node_types[0] as ReadonlyArray<string>
  const width = fields.length
  const typeAt = fields.indexOf("type")
  const nameAt = fields.indexOf("name")
  const sizeAt = fields.indexOf("self_size")
  const edgeCountAt = fields.indexOf("edge_count")
  const edgeWidth = meta.edge_fields.length
  const edgeTypes = meta.edge_types[0] as ReadonlyArray<string>
  const edgeTypeAt = meta.edge_fields.indexOf("type")
  const edgeNameAt = meta.edge_fields.indexOf("name_or_index")
  const edgeToAt = meta.edge_fields.indexOf("to_node")
  // Closure node index → line; closure → script name through shared → script.
  const locWidth = meta.location_fields.length
  const lineOf = new Map<number, number>()
  for (let i = 0; i < raw.locations.length; i += locWidth) lineOf.set(raw.locations[i]!, raw.locations[i + 2]! + 1)
  const firstEdge = new Int32Array(raw.nodes.length / width + 1)
  for (let n = 0, e = 0; n < raw.nodes.length / width; n++) {
    firstEdge[n] = e
    e += raw.nodes[n * width + edgeCountAt]! * edgeWidth
  }
  const edgeTo = (node: number, name: string): number | undefined => {
    const n = node / width
    const end = firstEdge[n]! + raw.nodes[node + edgeCountAt]! * edgeWidth
    for (let e = firstEdge[n]!; e < end; e += edgeWidth) {
      const kind = edgeTypes[raw.edges[e + edgeTypeAt]!]
      if (kind === "element" || kind === "hidden") continue
      if (raw.strings[raw.edges[e + edgeNameAt]!] === name) return raw.edges[e + edgeToAt]!
    }
    return undefined
  }
  const scriptName = (closure: number): string => {
    const shared = edgeTo(closure, "shared")
    const script = shared === undefined ? undefined : edgeTo(shared, "script")
    const source = script === undefined ? undefined : edgeTo(script, "name")
    return source === undefined ? "?" : short(raw.strings[raw.nodes[source + nameAt]!] ?? "?")
  }
  const out = new Map<string, Group>()
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + typeAt]!] ?? "?"
    let name = type === "string" || type === "concatenated string" || type === "sliced string" || type === "number"
      ? ""
      : raw.strings[raw.nodes[i + nameAt]!] ?? "?"
    if (type === "closure" && (name === "" || name === "native_bind")) {
      name = `${name}@${scriptName(i)}:${lineOf.get(i) ?? "?"}`
    }
    const key = `${type}:${name.length > 90 ? name.slice(0, 90) + "…" : name}`
    const group = out.get(key) ?? { key, count: 0, bytes: 0 }
    group.count++
    group.bytes += raw.nodes[i + sizeAt]!
    out.set(key, group)
  }
  return out
}

/** What grew from `before` to `after`, per unit (`per`: connections, cycles), largest first. */
export const diff = (
  before: Map<string, Group>,
  after: Map<string, Group>,
  per: number
): ReadonlyArray<{ readonly key: string; readonly count: number; readonly bytes: number }> => {
  const keys = new Set([...before.keys(), ...after.keys()])
  const rows: Array<{ key: string; count: number; bytes: number }> = []
  for (const key of keys) {
    const a = before.get(key) ?? { count: 0, bytes: 0 }
    const b = after.get(key) ?? { count: 0, bytes: 0 }
    rows.push({ key, count: (b.count - a.count) / per, bytes: (b.bytes - a.bytes) / per })
  }
  return rows.toSorted((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes))
}

/** Total self size, in bytes. */
export const total = (g: Map<string, Group>): number => [...g.values()].reduce((sum, x) => sum + x.bytes, 0)

/**
 * For up to `n` objects of group `key` (as {@link groups} names them), their own property
 * names and who holds them (`holder.edge`): to tell what an anonymous `Object` is.
 */
export const describe = (path: string, key: string, n: number, depth = 1): ReadonlyArray<string> => {
  const raw = JSON.parse(readFileSync(path, "utf8")) as RawSnapshot
  const meta = raw.snapshot.meta
  const width = meta.node_fields.length
  const types = meta.node_types[0] as ReadonlyArray<string>
  const typeAt = meta.node_fields.indexOf("type")
  const nameAt = meta.node_fields.indexOf("name")
  const edgeCountAt = meta.node_fields.indexOf("edge_count")
  const edgeWidth = meta.edge_fields.length
  const edgeTypes = meta.edge_types[0] as ReadonlyArray<string>
  const [keyType, keyName] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)]
  const nodeName = (node: number) => `${types[raw.nodes[node + typeAt]!]}:${raw.strings[raw.nodes[node + nameAt]!]}`
  const edgeName = (e: number) =>
    edgeTypes[raw.edges[e]!] === "element" || edgeTypes[raw.edges[e]!] === "hidden"
      ? `[${raw.edges[e + 1]}]`
      : raw.strings[raw.edges[e + 1]!]!
  const own = new Map<number, Array<string>>()
  const held = new Map<number, Array<string>>()
  const holders = new Map<number, Array<number>>()
  const picked: Array<number> = []
  for (let i = 0, e = 0; i < raw.nodes.length; i += width) {
    const count = raw.nodes[i + edgeCountAt]!
    const type = types[raw.nodes[i + typeAt]!]
    // Strings are grouped by type alone (see `groups`).
    const match = type === keyType && (keyName === "" || raw.strings[raw.nodes[i + nameAt]!] === keyName)
    if (match) picked.push(i)
    for (let k = 0; k < count; k++, e += edgeWidth) {
      const to = raw.edges[e + 2]!
      if (match) (own.get(i) ?? own.set(i, []).get(i)!).push(edgeName(e))
      const list = held.get(to) ?? held.set(to, []).get(to)!
      if (list.length < 4) {
        list.push(`${nodeName(i)}.${edgeName(e)}`)
        ;(holders.get(to) ?? holders.set(to, []).get(to)!).push(i)
      }
    }
  }
  // The newest objects (highest ids): those made per connection, not at start-up.
  const idAt = meta.node_fields.indexOf("id")
  // Up the first holder (weak edges excluded), `depth` steps.
  const chain = (node: number): string => {
    const steps: Array<string> = []
    let at = node
    for (let d = 1; d < depth; d++) {
      const up = holders.get(at)?.[0]
      if (up === undefined) break
      steps.push(held.get(up)?.[0] ?? nodeName(up))
      at = up
    }
    return steps.length === 0 ? "" : ` <- ${steps.join(" <- ")}`
  }
  return picked.toSorted((a, b) => raw.nodes[b + idAt]! - raw.nodes[a + idAt]!).slice(0, n).map((node) =>
    `${
      types[raw.nodes[node + typeAt]!]!.endsWith("string")
        ? JSON.stringify(raw.strings[raw.nodes[node + nameAt]!]!.slice(0, 60))
        : ""
    }{${(own.get(node) ?? []).filter((x) => x !== "map").join(", ")}} held by ${(held.get(node) ?? []).join(" | ")}${
      chain(node)
    }`
  )
}
