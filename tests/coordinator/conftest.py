"""Fixtures for the coordinator tests: a run directory that must end with no process left behind,
and an OpenAI-compatible chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from coord_helpers import ChatServer, processes_mentioning


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh run cwd; after the test, no process started in or for it may remain."""
    directory = tmp_path / "run"
    directory.mkdir()
    yield directory
    leftover = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leftover = processes_mentioning(str(tmp_path))
        if not leftover:
            break
        time.sleep(0.05)
    for proc in leftover:
        proc.kill()
    assert not leftover, f"processes left behind: {[p.info['cmdline'] for p in leftover]}"


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server_state = ChatServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with lock:
                server_state.requests.append(body)
                reply = server_state.responder(body)
            status, text = reply if isinstance(reply, tuple) else (200, json.dumps(reply))
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.port = httpd.server_address[1]
    # A short poll interval: shutdown() waits for one.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
