/**
 * The demo page: the server's four streams read with the browser's own
 * `EventSource`, no framework and no build step.
 *
 * Every stream goes through `follow`, which keeps a connection indicator up to
 * date (connecting / open / reconnecting / closed, reconnect count, the last
 * event id, the id a reconnect resumed from, a replay gap) and decides when a
 * stream is over: a `connection_close` whose reason is final closes the
 * `EventSource` so the browser does not reconnect; a `shutdown` close lets it
 * reconnect, sending `Last-Event-ID` on its own.
 *
 * The chat is resumable: the answer is generated on the server under an id
 * (kept in the page's URL as `#chat=<id>`), and the text shown so far with
 * its last event id is kept in `sessionStorage`, so a reload shows it again
 * and resumes the stream exactly after it (`?lastEventId=`).
 */

const byId = (id) => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`missing #${id}`)
  return el
}

const parse = (text) => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const withQuery = (url, name, value) =>
  `${url}${url.includes("?") ? "&" : "?"}${encodeURIComponent(name)}=${encodeURIComponent(value)}`

// Reconnecting by hand (when the browser gave up on a stream) backs off to this.
const maxManualDelayMs = 15_000

/**
 * Renders a connection indicator into `el` and returns its setters. Every
 * value is mirrored in a `data-*` attribute so tests read state, not text.
 */
const indicator = (el, name) => {
  el.replaceChildren(byId("conn-template").content.cloneNode(true))
  const part = (role) => el.querySelector(`[data-role="${role}"]`)
  part("name").textContent = name
  const set = (attr, role, value) => {
    el.dataset[attr] = value
    const target = part(role)
    if (target !== null) target.textContent = value === "" ? "–" : value
  }
  return {
    state: (state, detail = "") => {
      el.dataset.state = state
      el.dataset.detail = detail
      part("state").textContent = detail === "" ? state : `${state}: ${detail}`
    },
    reconnects: (n) => set("reconnects", "reconnects", String(n)),
    lastId: (id) => set("lastId", "last-id", id),
    resumeId: (id, via) => {
      set("resumeId", "resume-id", id)
      el.dataset.resumeVia = via
      part("resume-via").textContent = via === "header" ? "(Last-Event-ID)" : via === "query" ? "(?lastEventId=)" : ""
    },
    connectionId: (id) => {
      el.dataset.connectionId = id
      el.title = `connection ${id}`
    },
    gap: (text, reason = "", lastId = "") => {
      el.dataset.gap = text
      el.dataset.gapReason = reason
      el.dataset.gapLastId = lastId
      const gap = part("gap")
      gap.hidden = text === ""
      gap.textContent = `gap: ${text}`
    }
  }
}

/**
 * Follows one SSE stream.
 *
 * - `on`: handlers by event type, called with the parsed JSON data (or the
 *   raw text) and the `MessageEvent`;
 * - `isFinal(reason)`: whether a `connection_close` with this reason ends the
 *   stream for good (the `EventSource` is closed);
 * - `persistent`: keep the stream alive even when the browser gives up on it
 *   (an HTTP error such as a 503 while the server shuts down): reopen it after
 *   a backoff, resuming with `?lastEventId=` since a new `EventSource` cannot
 *   set the header;
 * - `onEnd(reason)`: called once when the stream is over;
 * - `resumeFrom`: the last event id this page already has (after a reload).
 */
const follow = (url, options) => {
  const view = indicator(options.el, options.name)
  const isFinal = options.isFinal ?? (() => false)
  let source
  let opened = 0
  let reconnects = 0
  let lastId = ""
  let ended = false
  let timer
  let manualDelay = 1_000

  view.reconnects(0)
  view.lastId("")
  view.resumeId("", "")
  view.gap("")

  const end = (reason) => {
    if (ended) return
    ended = true
    clearTimeout(timer)
    source.close()
    view.state("closed", reason)
    options.onEnd?.(reason)
  }

  const seen = (event) => {
    // The browser's last event id at dispatch time: what it sends when it reconnects.
    if (event.lastEventId !== lastId) {
      lastId = event.lastEventId
      view.lastId(lastId)
    }
  }

  const listen = (type, handler) =>
    source.addEventListener(type, (event) => {
      seen(event)
      handler(parse(event.data) ?? event.data, event)
    })

  const connect = (resumeFrom) => {
    source = new EventSource(resumeFrom === "" ? url : withQuery(url, "lastEventId", resumeFrom))
    view.state(opened === 0 ? "connecting" : "reconnecting")
    // A new EventSource resumes through the query; its own reconnections send the header.
    let sourceOpens = 0

    source.addEventListener("open", () => {
      if (opened > 0) {
        reconnects++
        view.reconnects(reconnects)
        view.resumeId(lastId, lastId === "" ? "" : sourceOpens === 0 ? "query" : "header")
        // A gap belongs to one resume: this one reports its own, if any.
        view.gap("")
      }
      opened++
      sourceOpens++
      manualDelay = 1_000
      view.state("open")
    })

    source.addEventListener("error", (event) => {
      if (event instanceof MessageEvent) {
        // An `error` event sent by the server, not a network error.
        seen(event)
        const data = parse(event.data)
        options.on.error?.(data ?? event.data, event)
        return
      }
      if (ended) return
      if (source.readyState === EventSource.CONNECTING) {
        view.state("reconnecting")
      } else if (options.persistent) {
        // The browser failed the connection for good; reopen it ourselves.
        source.close()
        view.state("reconnecting", `retry in ${Math.round(manualDelay / 1000)} s`)
        timer = setTimeout(() => connect(lastId), manualDelay)
        manualDelay = Math.min(manualDelay * 2, maxManualDelayMs)
      } else {
        end("error")
      }
    })

    listen("connection_open", (data) => {
      if (typeof data?.connection_id === "string") view.connectionId(data.connection_id)
    })
    listen("connection_close", (data) => {
      const reason = typeof data?.reason === "string" ? data.reason : "unknown"
      if (isFinal(reason)) end(reason)
      else view.state("reconnecting", reason)
    })
    listen("replay_gap", (data) => {
      const reason = typeof data?.reason === "string" ? data.reason : "unknown"
      const from = typeof data?.lastEventId === "string" ? data.lastEventId : ""
      view.gap(`${reason} after ${from === "" ? "?" : from}`, reason, from)
    })
    for (const [type, handler] of Object.entries(options.on)) {
      if (type !== "error") listen(type, handler)
    }
  }

  connect(options.resumeFrom ?? "")
  return { stop: () => end("stopped") }
}

// ---------------------------------------------------------------- version

const startVersion = () => {
  let heartbeats = 0
  follow("/api/version/stream", {
    name: "version",
    el: byId("conn-version"),
    persistent: true,
    on: {
      version: (data) => {
        byId("version-version").textContent = data?.version ?? "?"
        byId("version-environment").textContent = data?.environment ?? "?"
        byId("version-commit").textContent = data?.git_commit ?? "?"
      },
      heartbeat: () => {
        heartbeats++
        byId("version-heartbeats").textContent = String(heartbeats)
      }
    }
  })
}

// ---------------------------------------------------------------- ticker

const startTicker = () => {
  const rows = byId("ticker-rows")
  const count = byId("ticker-count")
  const byTicker = new Map()
  let total = 0
  const formatPrice = (n) => n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })

  const row = (name) => {
    let entry = byTicker.get(name)
    if (entry !== undefined) return entry
    const tr = document.createElement("tr")
    tr.dataset.testid = "ticker-row"
    tr.dataset.ticker = name
    const cells = ["name", "price", "change", "updates"].map((role) => {
      const td = document.createElement(role === "name" ? "th" : "td")
      if (role === "name") td.scope = "row"
      td.dataset.role = role
      tr.append(td)
      return td
    })
    cells[0].textContent = name
    entry = { tr, price: cells[1], change: cells[2], updates: cells[3], last: undefined, n: 0 }
    byTicker.set(name, entry)
    const after = [...byTicker.keys()].toSorted().find((other) => other > name)
    rows.insertBefore(tr, after === undefined ? null : byTicker.get(after).tr)
    return entry
  }

  follow("/api/ticker/stream", {
    name: "ticker",
    el: byId("conn-ticker"),
    persistent: true,
    on: {
      price_update: (data, event) => {
        if (typeof data?.ticker !== "string" || typeof data.price !== "number") return
        const entry = row(data.ticker)
        const diff = entry.last === undefined ? 0 : data.price - entry.last
        entry.last = data.price
        entry.n++
        entry.price.textContent = formatPrice(data.price)
        entry.change.textContent = diff === 0 ? "·" : `${diff > 0 ? "▲" : "▼"} ${formatPrice(Math.abs(diff))}`
        entry.tr.dataset.dir = diff > 0 ? "up" : diff < 0 ? "down" : "flat"
        entry.tr.dataset.price = String(data.price)
        entry.tr.dataset.eventId = event.lastEventId
        entry.updates.textContent = String(entry.n)
        total++
        count.textContent = String(total)
        count.dataset.count = String(total)
      }
    }
  })
}

// ---------------------------------------------------------------- publishing

// Publishing needs the server's bearer token. The page reads it from
// /api/session, which only same-origin code can read (no CORS headers).
let session
const publishToken = async () => {
  session ??= fetch("/api/session", { cache: "no-store" }).then(async (response) => {
    if (!response.ok) throw new Error(`the server answered ${response.status}`)
    const body = parse(await response.text())
    if (typeof body?.publishToken !== "string") throw new Error("no publish token in the session")
    return body.publishToken
  })
  try {
    return await session
  } catch (cause) {
    session = undefined
    throw cause
  }
}

const startPublish = () => {
  const form = byId("publish-form")
  const status = byId("publish-status")
  const show = (state, text) => {
    status.dataset.state = state
    status.textContent = text
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    const update = { ticker: byId("publish-ticker").value, price: Number(byId("publish-price").value) }
    try {
      const response = await fetch("/api/ticker/publish", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${await publishToken()}` },
        body: JSON.stringify(update)
      })
      const body = parse(await response.text())
      if (response.status !== 202) {
        show("error", body?.detail ?? body?.title ?? `the server answered ${response.status}`)
        return
      }
      show("published", `published as event ${body?.id ?? "?"}`)
      status.dataset.eventId = String(body?.id ?? "")
    } catch (cause) {
      show("error", `could not publish (${cause instanceof Error ? cause.message : String(cause)})`)
    }
  })
}

// ---------------------------------------------------------------- tasks

const maxTasksShown = 8

const startTasks = () => {
  const form = byId("task-form")
  const list = byId("tasks")
  const error = byId("task-error")
  const number = (id) => {
    const value = byId(id).value.trim()
    return value === "" ? undefined : Number(value)
  }

  const showError = (text) => {
    error.textContent = text
    error.hidden = text === ""
  }

  const addTask = (id) => {
    const li = byId("task-template").content.firstElementChild.cloneNode(true)
    const part = (role) => li.querySelector(`[data-role="${role}"]`)
    li.dataset.taskId = id
    li.dataset.progress = "0"
    part("id").textContent = id
    list.prepend(li)
    // Keep the list short: drop the oldest finished tasks.
    const finished = [...list.children].filter((item) => item.dataset.done === "true")
    while (list.children.length > maxTasksShown && finished.length > 0) finished.pop().remove()

    const status = (value, label = value) => {
      li.dataset.status = value
      part("status").textContent = label
    }
    const progress = (pct) => {
      const value = Math.max(0, Math.min(100, Math.round(pct)))
      li.dataset.progress = String(value)
      part("pct").textContent = `${value}%`
      part("fill").style.width = `${value}%`
      li.querySelector("[role=progressbar]").setAttribute("aria-valuenow", String(value))
    }

    follow(`/api/tasks/${encodeURIComponent(id)}/stream`, {
      name: "stream",
      el: part("conn"),
      // Any close but a shutdown is the end of this task's stream: reconnecting
      // after `replaced` would take the stream back from the newer client.
      isFinal: (reason) => reason !== "shutdown",
      on: {
        connection_open: () => {
          if (li.dataset.status === "connecting") status("running")
        },
        task_event: (data) => {
          if (typeof data?.data?.progress === "number") progress(data.data.progress)
          if (typeof data?.data?.text === "string") part("text").textContent = data.data.text
          if (data?.event_type === "task_completed") status("completed")
          else if (data?.event_type === "task_failed") status("failed")
          else status("running")
        },
        error: (data) => {
          part("text").textContent = typeof data?.message === "string" ? data.message : String(data)
        }
      },
      onEnd: (reason) => {
        li.dataset.done = "true"
        if (reason === "task_not_found" || reason === "not_found") status("not_found", "not found")
        else if (reason === "replaced") status("replaced", "replaced by another client")
        else if (reason === "error") status("error", "connection failed")
      }
    })
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    showError("")
    const spec = { steps: number("task-steps") }
    const failAt = number("task-fail-at")
    const stepMs = number("task-step-ms")
    if (failAt !== undefined) spec.failAt = failAt
    if (stepMs !== undefined) spec.stepMs = stepMs
    try {
      const response = await fetch("/api/tasks", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(spec)
      })
      const body = parse(await response.text())
      if (response.status !== 201 || typeof body?.id !== "string") {
        showError(body?.detail ?? body?.title ?? `the server answered ${response.status}`)
        return
      }
      addTask(body.id)
    } catch (cause) {
      showError(`could not reach the server (${cause instanceof Error ? cause.message : String(cause)})`)
    }
  })
}

// ---------------------------------------------------------------- chat

const chatKey = (id) => `sluice-chat:${id}`

const readSaved = (id) => {
  try {
    const saved = parse(sessionStorage.getItem(chatKey(id)) ?? "")
    return typeof saved?.text === "string" && typeof saved?.lastId === "string" ? saved : undefined
  } catch {
    return undefined
  }
}

const writeSaved = (id, saved) => {
  try {
    sessionStorage.setItem(chatKey(id), JSON.stringify(saved))
  } catch {
    // Storage full or disabled: a reload then starts the answer over.
  }
}

const chatFromHash = () => {
  const match = /^#chat=([A-Za-z0-9_-]{8,64})$/.exec(location.hash)
  return match === null ? undefined : match[1]
}

const startChat = () => {
  const form = byId("chat-form")
  const output = byId("chat-output")
  const conn = byId("conn-chat")
  const stop = byId("chat-stop")
  const error = (text) => {
    output.dataset.state = "error"
    output.textContent = text
  }
  let current

  // Shows answer `id`: what this tab already has of it, then the rest from the server.
  const open = (id) => {
    current?.stream.stop()
    history.replaceState(null, "", `#chat=${id}`)
    const saved = readSaved(id) ?? { text: "", lastId: "", tokens: 0 }
    let { text, lastId, tokens } = saved
    const show = () => {
      output.textContent = text
      output.dataset.tokens = String(tokens)
    }
    const save = () => writeSaved(id, { text, lastId, tokens })
    output.dataset.chatId = id
    output.dataset.state = "streaming"
    output.dataset.reason = ""
    output.dataset.resumedFrom = lastId
    show()
    stop.disabled = false
    const stream = follow(`/api/chat/${encodeURIComponent(id)}/stream`, {
      name: "chat",
      el: conn,
      resumeFrom: lastId,
      isFinal: (reason) => reason !== "shutdown" && reason !== "unavailable",
      on: {
        token: (data, event) => {
          const piece = typeof data?.text === "string" ? data.text : String(data)
          text += piece
          tokens++
          lastId = event.lastEventId
          output.append(piece)
          output.dataset.tokens = String(tokens)
          save()
        },
        // An id this server cannot resume: the answer comes again from its beginning.
        replay_gap: () => {
          text = ""
          tokens = 0
          lastId = ""
          show()
          save()
        },
        done: (data) => {
          output.dataset.state = "done"
          output.dataset.reason = typeof data?.reason === "string" ? data.reason : "unknown"
        },
        error: (data) => {
          output.dataset.state = "failed"
          output.append(` [${typeof data?.message === "string" ? data.message : "error"}]`)
        }
      },
      onEnd: (reason) => {
        stop.disabled = true
        if (output.dataset.state === "streaming") output.dataset.state = reason
      }
    })
    current = { id, stream }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: byId("chat-prompt").value })
      })
      const body = parse(await response.text())
      if (response.status !== 201 || typeof body?.id !== "string") {
        error(body?.detail ?? body?.title ?? `the server answered ${response.status}`)
        return
      }
      open(body.id)
    } catch (cause) {
      error(`could not reach the server (${cause instanceof Error ? cause.message : String(cause)})`)
    }
  })

  // Stop ends the generation on the server; the stream then ends with `stopped`.
  stop.addEventListener("click", async () => {
    if (current === undefined) return
    stop.disabled = true
    try {
      const response = await fetch(`/api/chat/${encodeURIComponent(current.id)}`, { method: "DELETE" })
      if (response.status >= 400) stop.disabled = false
    } catch {
      stop.disabled = false
    }
  })

  const reopened = chatFromHash()
  if (reopened !== undefined) open(reopened)
}

startVersion()
startTicker()
startPublish()
startTasks()
startChat()
