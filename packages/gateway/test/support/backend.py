#!/usr/bin/env python3
"""A small application that drives the sluice gateway, with Python's standard
library only: proof that any backend can. It plays the Flask app of the
gateway's scenarios: tasks whose progress streams to a browser.

It serves:
  POST /callback           the gateway's connect/disconnect callbacks
  POST /tasks              {"id", "known"?}: registers a task (unknown ids get 404 on connect)
  POST /tasks/<id>/send    {"events": [...], "close"?, "reason"?, "by": "key"|"token"|"stale"}
                           posts to the gateway's /internal/send; answers what the gateway said
  POST /tasks/<id>/run     {"steps": n}: progress_update events 1..n-1, then task_completed (close)
  POST /control            {"gateway_url", "secret", "connect_delay"}
  GET  /log?action=&count=&timeout=   the callbacks seen (waits until `count` of `action` arrived)

It prints "port <n>" on stdout once it listens (port 0 picks a free one).
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Condition()
config = {"gateway_url": None, "secret": None, "connect_delay": 0.0}
tasks = {}  # id -> {"token": current token or None, "old_tokens": [...]}
log = []  # callbacks received, with what the app decided


def send_to_gateway(items):
    body = json.dumps(items).encode()
    req = urllib.request.Request(
        config["gateway_url"] + "/internal/send",
        data=body,
        method="POST",
        headers={"content-type": "application/json", "authorization": "Bearer " + config["secret"]},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def task_event(task_id, event_type, progress, text):
    return {
        "event": "task_event",
        "data": {"event_type": event_type, "task_id": task_id, "data": {"progress": progress, "text": text}},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, payload=None):
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/log":
            return self.reply(404)
        q = parse_qs(url.query)
        action = q.get("action", [None])[0]
        count = int(q.get("count", ["0"])[0])
        deadline = time.time() + float(q.get("timeout", ["10"])[0])
        with lock:
            def seen():
                return [c for c in log if action is None or c["action"] == action]
            while len(seen()) < count and time.time() < deadline:
                lock.wait(deadline - time.time())
            self.reply(200, seen())

    def do_POST(self):
        path = urlparse(self.path).path
        parts = path.strip("/").split("/")
        if path == "/control":
            with lock:
                config.update(self.body())
            return self.reply(200, {})
        if path == "/tasks":
            b = self.body()
            with lock:
                tasks[b["id"]] = {"token": None, "old_tokens": []}
            return self.reply(201, {"id": b["id"]})
        if path == "/callback":
            return self.callback()
        if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "send":
            return self.send_events(parts[1], self.body())
        if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "run":
            return self.run_task(parts[1], self.body())
        self.reply(404)

    def callback(self):
        if self.headers.get("authorization") != "Bearer " + str(config["secret"]):
            return self.reply(401, {"message": "bad gateway secret"})
        b = self.body()
        entry = {"action": b["action"], "token": b["token"], "key": b["key"],
                 "correlation_id": b.get("correlation_id"), "header_correlation_id": self.headers.get("x-correlation-id")}
        if b["action"] == "connect":
            entry["request"] = b["request"]
            if config["connect_delay"]:
                time.sleep(config["connect_delay"])
            with lock:
                task = tasks.get(b["key"])
                if task is None:
                    entry["decision"] = "not_found"
                    log.append(entry)
                    lock.notify_all()
                    return self.reply(404, {"reason": "task_not_found", "message": "task not found"})
                if task["token"] is not None:
                    task["old_tokens"].append(task["token"])
                task["token"] = b["token"]
                entry["decision"] = "accepted"
                log.append(entry)
                lock.notify_all()
            return self.reply(200, {})
        with lock:
            entry["reason"] = b["reason"]
            task = tasks.get(b["key"])
            # A replaced connection's disconnect comes after its successor's
            # connect: its token is not the current one, so it is ignored.
            if task is not None and task["token"] == b["token"]:
                task["token"] = None
                entry["decision"] = "cleared"
            else:
                entry["decision"] = "ignored_stale"
            log.append(entry)
            lock.notify_all()
        self.reply(200, {})

    def target(self, task_id, by):
        with lock:
            task = tasks.get(task_id, {"token": None, "old_tokens": []})
            if by == "token":
                return {"token": task["token"] or "none"}
            if by == "stale":
                return {"token": task["old_tokens"][-1] if task["old_tokens"] else "none"}
            return {"key": task_id}

    def send_events(self, task_id, b):
        target = self.target(task_id, b.get("by", "key"))
        items = [dict(target, event=e) for e in b.get("events", [])]
        if b.get("close"):
            if items:
                items[-1].update(close=True, reason=b.get("reason", "completed"))
            else:
                items.append(dict(target, close=True, reason=b.get("reason", "completed")))
        status, answer = send_to_gateway(items if len(items) != 1 else items[0])
        if status == 404 and "token" in target:
            # The gateway says the client is gone: clean up.
            with lock:
                task = tasks.get(task_id)
                if task is not None and task["token"] == target["token"]:
                    task["token"] = None
        self.reply(200, {"status": status, "answer": answer})

    def run_task(self, task_id, b):
        steps = int(b.get("steps", 3))
        by = b.get("by", "key")
        results = []
        for step in range(1, steps):
            item = dict(self.target(task_id, by), event=task_event(task_id, "progress_update", round(step * 100 / steps), f"Step {step} of {steps}"))
            results.append(send_to_gateway(item)[0])
        last = dict(self.target(task_id, by), event=task_event(task_id, "task_completed", 100, "done"), close=True, reason="task_completed")
        results.append(send_to_gateway(last)[0])
        self.reply(200, {"statuses": results})


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
server.daemon_threads = True
print("port", server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
