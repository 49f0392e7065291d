"""A bare MCP host for the lifetime tests: starts `python -m supervisor mcp`, speaks JSON-RPC lines to it.

    python mcp_host.py WAITS (close | stay) [--keeper]

It shakes hands, starts a `sleep 600` shell, sends WAITS wait_shell calls on it (timeout 600 s) and
does not read their answers. Then it prints `ready <server pid> <shell id> <keeper pid or 0>` and
either closes the server's stdin and reports how the server ended (`close`: `exited <code>`, or
`running` if it is still there after 60 s), or sleeps until it is killed (`stay`). With `--keeper`,
a `sleep` process inherits the host's end of the server's stdin, as a leaked descriptor would, so
the server's stdin stays open when the host dies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any


def main() -> None:
    waits, then, keeper_wanted = int(sys.argv[1]), sys.argv[2], "--keeper" in sys.argv
    server = subprocess.Popen([sys.executable, "-m", "supervisor", "mcp"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    keeper = (subprocess.Popen(["sleep", "600"], pass_fds=[server.stdin.fileno()]) if keeper_wanted else None)

    def send(message: dict[str, Any]) -> None:
        assert server.stdin is not None
        server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        server.stdin.flush()

    def answer(request_id: int) -> dict[str, Any]:
        assert server.stdout is not None
        while True:
            message = json.loads(server.stdout.readline())
            if message.get("id") == request_id:
                return message

    send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                      "clientInfo": {"name": "test-host", "version": "1"}}})
    answer(1)
    send({"method": "notifications/initialized"})
    send({"id": 2, "method": "tools/call", "params": {"name": "start_shell", "arguments": {"command": "sleep 600"}}})
    shell_id = answer(2)["result"]["structuredContent"]["shell_id"]
    for n in range(waits):
        send({"id": 10 + n, "method": "tools/call",
              "params": {"name": "wait_shell", "arguments": {"shell_id": shell_id, "timeout": 600}}})
    print("ready", server.pid, shell_id, keeper.pid if keeper else 0, flush=True)
    if then == "close":
        # Waits the test sees in flight before it lets this go on.
        sys.stdin.readline()
        server.stdin.close()
        try:
            print("exited", server.wait(timeout=60), flush=True)
        except subprocess.TimeoutExpired:
            print("running", flush=True)
            server.kill()
    else:
        time.sleep(600)


if __name__ == "__main__":
    main()
