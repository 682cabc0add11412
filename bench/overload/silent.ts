/**
 * A child of the overload benchmark: opens `n` sockets to `port` that never
 * send a byte, prints one JSON line when they are connected, then one each
 * time it is asked (a line on stdin), and exits when stdin closes.
 *
 * `node bench/overload/silent.ts <port> <n>`
 */
import { createInterface } from "node:readline"
import { silentSockets } from "../../tests/overload/attack.ts"

const port = Number(process.argv[2])
const n = Number(process.argv[3])
const silent = await silentSockets(port, n, 500)
const report = () =>
  console.log(
    JSON.stringify({
      connected: silent.sockets.length,
      closedByServer: silent.closedByServer(),
      failed: silent.failed()
    })
  )
report()
const lines = createInterface({ input: process.stdin })
lines.on("line", report)
lines.on("close", () => {
  silent.close()
  process.exit(0)
})
