"""A scripted OpenAI-compatible chat server on 127.0.0.1, for testing through the real litellm.

Each request to /v1/chat/completions takes the next turn of the script:
  - a string: a normal answer with that content;
  - Turn(...): an HTTP status (429, 500 ...), a delay before answering, or both.
Every request body is kept in `requests`, so tests can read the prompts the agent sent.
A request past the end of the script gets a 400 that says so (a test asked too often).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_DELAY = 5.0  # a slow turn never holds a test longer than this

# litellm stays offline in tests: its bundled cost map, no telemetry, no proxy for loopback.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1",
                                                 "localhost"]))


@dataclass
class Turn:
    content: str = ""
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int = 0  # 0: counted from the request (about 4 characters a token)
    completion_tokens: int = 0


class ScriptedLLMServer:
    def __init__(self, *turns, model_reply: str | None = None):
        self.turns = [t if isinstance(t, Turn) else Turn(content=t) for t in turns]
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    turn = server.turns.pop(0) if server.turns else None
                if turn is None:
                    return self._reply(400, {"error": {
                        "message": "the test script has no more turns",
                        "type": "invalid_request_error"}})
                if turn.delay:
                    time.sleep(min(turn.delay, MAX_DELAY))
                if turn.status != 200:
                    kind = "rate_limit_exceeded" if turn.status == 429 else "server_error"
                    return self._reply(turn.status, {"error": {"message": f"scripted {turn.status}",
                                                               "type": kind, "code": kind}})
                prompt = turn.prompt_tokens or max(1, len(json.dumps(body.get("messages"))) // 4)
                completion = turn.completion_tokens or max(1, len(turn.content) // 4)
                self._reply(200, {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "scripted"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": turn.content}}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion},
                })

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def add(self, *turns) -> None:
        with self._lock:
            self.turns.extend(t if isinstance(t, Turn) else Turn(content=t) for t in turns)

    def __enter__(self) -> ScriptedLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
