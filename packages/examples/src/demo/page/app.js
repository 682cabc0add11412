// Minimal client: the streams of the demo with the browser's own EventSource.
const version = new EventSource("/api/version/stream")
version.addEventListener("version", (e) => {
  document.getElementById("version").textContent = e.data
})

const ticker = new EventSource("/api/ticker/stream")
ticker.addEventListener("price_update", (e) => {
  const { ticker: name, price } = JSON.parse(e.data)
  const body = document.querySelector("#ticker tbody")
  let row = body.querySelector(`tr[data-ticker="${name}"]`)
  if (!row) {
    row = document.createElement("tr")
    row.dataset.ticker = name
    row.innerHTML = "<td></td><td></td>"
    body.append(row)
  }
  row.children[0].textContent = name
  row.children[1].textContent = price.toFixed(2)
})

document.getElementById("start-task").addEventListener("click", async () => {
  const res = await fetch("/api/tasks", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ steps: 5, stepMs: 300 })
  })
  const { id } = await res.json()
  const item = document.createElement("li")
  item.dataset.task = id
  item.textContent = `${id}: 0%`
  document.getElementById("tasks").append(item)
  const stream = new EventSource(`/api/tasks/${id}/stream`)
  stream.addEventListener("task_event", (e) => {
    const event = JSON.parse(e.data)
    item.textContent = `${id}: ${event.data.progress}% ${event.data.text}`
  })
  stream.addEventListener("connection_close", () => stream.close())
})
