import { expect } from "@effect/vitest"
import type { Connection } from "../../src/index.ts"
import type { TestProducer } from "../../src/testing.ts"

// Every accepted event is accounted for: written, or discarded with the outcome.
// (The last offer may have been accepted just as the producer was interrupted.)
export const expectAccounted = (outcome: Connection.Outcome, producer: TestProducer.TestProducer<unknown>) => {
  expect(outcome.delivered + outcome.discarded).toBeGreaterThanOrEqual(producer.offered())
  expect(outcome.delivered + outcome.discarded).toBeLessThanOrEqual(producer.attempted())
  expect(producer.state()).not.toBe("running")
  expect(producer.finalized()).toBe(1)
}
