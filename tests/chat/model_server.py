"""A real OpenAI-compatible Chat Completions server on loopback, with scripted answers.

It speaks the API's streaming wire format (server-sent events of `chat.completion.chunk`
objects, tool calls sent in fragments by index, a last chunk with `usage` when the client asks
for it with stream_options, then `data: [DONE]`), so the real `openai` client talks to it as it
would to a provider. Each request takes the next scripted answer and is recorded."""

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    text: str = ""
    tool_calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, name, arguments)
    usage: tuple[int, int] | None = (20, 10)
    pieces: int = 3  # the text is sent in this many chunks
    delay: float = 0.0  # seconds before each chunk
    status: int | None = None  # answer with this HTTP error instead
    hang: float = 0.0  # wait this long before answering at all
    stall_after: int = -1  # after this many pieces of the text, stop for `stall` seconds
    stall: float = 0.0


@dataclass
class Request:
    body: dict
    headers: dict


class ModelServer:
    def __init__(self):
        self.answers: queue.Queue[Answer] = queue.Queue()
        self.requests: list[Request] = []
        # Set when the server stops: answers that hang or stall give up then, so stopping never
        # waits on them.
        self.stopping = threading.Event()
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, text: str = "", **options) -> None:
        self.answers.put(Answer(text=text, **options))

    def start(self) -> "ModelServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        self.requests.clear()
        while not self.answers.empty():
            self.answers.get_nowait()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(
                    Request(body=body, headers={k.lower(): v for k, v in self.headers.items()})
                )
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._error(404, "not found")
                try:
                    answer = server.answers.get_nowait()
                except queue.Empty:
                    answer = Answer(text="(no scripted answer)")
                if answer.hang:
                    server.stopping.wait(answer.hang)
                if answer.status:
                    return self._error(answer.status, "scripted failure")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for index, chunk in enumerate(_chunks(answer, body)):
                        if answer.delay:
                            time.sleep(answer.delay)
                        if index == answer.stall_after + 1:  # chunk 0 carries only the role
                            server.stopping.wait(answer.stall)
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (the user pressed stop)
                self.close_connection = True
                return None

            def _error(self, status: int, message: str):
                payload = json.dumps({"error": {"message": message, "type": "server_error"}})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

        return Handler


def _chunk(body: dict, *, delta: dict | None = None, finish: str | None = None, usage=None):
    chunk = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _chunks(answer: Answer, body: dict):
    yield _chunk(body, delta={"role": "assistant", "content": ""})
    text = answer.text
    if text:
        size = max(1, -(-len(text) // answer.pieces))
        for start in range(0, len(text), size):
            yield _chunk(body, delta={"content": text[start : start + size]})
    for index, (call_id, name, arguments) in enumerate(answer.tool_calls):
        encoded = json.dumps(arguments)
        half = len(encoded) // 2
        yield _chunk(
            body,
            delta={
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": encoded[:half]},
                    }
                ]
            },
        )
        yield _chunk(
            body,
            delta={"tool_calls": [{"index": index, "function": {"arguments": encoded[half:]}}]},
        )
    yield _chunk(body, delta={}, finish="tool_calls" if answer.tool_calls else "stop")
    if answer.usage and (body.get("stream_options") or {}).get("include_usage"):
        prompt, completion = answer.usage
        yield _chunk(
            body,
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        )
