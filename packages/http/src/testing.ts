/**
 * Test kit for SSE routes over real sockets: a server on an ephemeral port
 * and a recording client.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as TestServer from "./testing/TestServer.ts"

/** @since 0.1.0 */
export * as TestClient from "./testing/TestClient.ts"
