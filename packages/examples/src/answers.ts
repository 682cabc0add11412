/**
 * Resumable LLM-style answers in one file: `POST /answers` starts one and
 * answers `201 {"id"}`, `GET /answers/:id/stream` attaches to it (and
 * resumes after `Last-Event-ID`), `DELETE /answers/:id` stops it.
 *
 *   pnpm --filter @sluice/examples answers
 *   curl -s -XPOST localhost:8080/answers -H 'content-type: application/json' -d '{"prompt":"SSE"}'
 *   curl -N localhost:8080/answers/<id>/stream
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Resumable, SseEvent } from "@sluice/core"
import { SseResumable, SseServer } from "@sluice/http"
import { Effect, Layer, Schedule, Schema, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"

// A stand-in for a model: one token every 50 ms.
const generate = (prompt: string) =>
  Stream.fromIterable(`Here is an answer about ${prompt}, streamed one token at a time.`.split(/(?<= )/)).pipe(
    Stream.schedule(Schedule.spaced("50 millis")),
    Stream.map((text) => SseEvent.make({ event: "token", data: JSON.stringify({ text }) }))
  )

const Question = Schema.Struct({ prompt: Schema.String.check(Schema.isMaxLength(2_000)) })
const id = Effect.map(HttpRouter.params, (p) => p["id"] ?? "")

const Answers = Layer.unwrap(Effect.map(
  Resumable.make({ maxStreams: 100, defaults: { maxLifetime: "5 minutes", retention: "10 minutes" } }),
  (answers) =>
    Layer.mergeAll(
      HttpRouter.add(
        "POST",
        "/answers",
        Effect.gen(function*() {
          const question = yield* Effect.result(HttpServerRequest.schemaBodyJson(Question))
          if (question._tag === "Failure") {
            return HttpServerResponse.text("expected {\"prompt\": string}", { status: 400 })
          }
          // 201 {"id"}; the generation belongs to the server, not to this request
          return yield* SseResumable.start(Resumable.start(answers, randomUUID(), generate(question.success.prompt)))
        })
      ),
      // attach: the record after Last-Event-ID, live tokens, `done`, then connection_close with the reason
      HttpRouter.add(
        "GET",
        "/answers/:id/stream",
        SseResumable.attach(answers, () => id, {
          end: (end) => [SseEvent.make({ event: "done", data: JSON.stringify({ reason: Resumable.reasonOf(end) }) })]
        })
      ),
      // stop: from any request, on any node; attached clients get `stopped`
      HttpRouter.add("DELETE", "/answers/:id", SseResumable.stop(answers, id))
    )
))

HttpRouter.serve(Answers).pipe(
  SseServer.withGracefulShutdown,
  Layer.provide(SseServer.layer()),
  Layer.provide(NodeHttpServer.layer(createServer, { port: Number(process.env["PORT"] ?? 8080), host: "127.0.0.1" })),
  Layer.launch,
  NodeRuntime.runMain
)
