"""The ``command`` backend: any program is an agent (JSON on stdin, one JSON object on stdout).

For each turn the program is started in the agent's workspace, in its own process group, gets one
request object on stdin (DESIGN §6) and must print one reply object and exit 0. A cancelled turn
(restart, timeout, interrupt) stops the program with its whole process tree, and so does output
past the turn's byte limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import AgentError
from ..limits import DEFAULT_MAX_OUTPUT_BYTES
from ..procs import stop_process_tree
from ..protocol.messages import Action, CoordinateRequest, NewAnswer, PresentRequest, Vote
from .base import Transcript, Usage, add_reported_usage
from .replies import parse_json

STDERR_TAIL_CHARS = 300
OVERFLOW_LOG_BYTES = 64 * 1024
"""How much of a stream that passed the limit the transcript keeps."""


def parse_action(reply: Mapping[str, Any]) -> Action:
    """Turn a coordinate reply into an action; anything else is an :class:`AgentError`."""
    action = reply.get("action")
    if action == "new_answer":
        content = reply.get("content")
        if not isinstance(content, str):
            raise AgentError("new_answer reply needs a string 'content'")
        return NewAnswer(content)
    if action == "vote":
        target = reply.get("agent_id")
        reason = reply.get("reason", "")
        if not isinstance(target, str) or not isinstance(reason, str):
            raise AgentError("vote reply needs a string 'agent_id' (and optional string 'reason')")
        return Vote(target, reason)
    raise AgentError(f"unknown action {action!r}; expected 'new_answer' or 'vote'")


class CommandBackend:
    """Runs ``argv`` once per turn. ``env`` is overlaid on the run's environment (``environ``,
    default: this process's). A turn whose stdout or stderr passes ``max_output_bytes`` is stopped
    and fails."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        transcript: Transcript,
        env: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> None:
        self._argv = list(argv)
        self._cwd = cwd
        self._transcript = transcript
        self._env = {**(os.environ if environ is None else environ), **(env or {})}
        self._max_output = max_output_bytes
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        return self._usage

    async def coordinate(self, request: CoordinateRequest) -> Action:
        return parse_action(await self._exchange(request.as_dict()))

    async def present(self, request: PresentRequest) -> str:
        content = (await self._exchange(request.as_dict())).get("content")
        if not isinstance(content, str):
            raise AgentError("present reply needs a string 'content'")
        return content

    async def aclose(self) -> None:
        return None

    async def _exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        phase = payload["phase"]
        overflow = asyncio.Event()
        with tempfile.TemporaryFile() as stdin, _Capture(self._max_output, overflow.set) as stdout, _Capture(
            self._max_output, overflow.set
        ) as stderr:
            stdin.write(json.dumps(payload).encode())
            stdin.seek(0)
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._argv,
                    stdin=stdin,
                    stdout=stdout.child_end,
                    stderr=stderr.child_end,
                    cwd=self._cwd,
                    env=self._env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise AgentError(f"cannot start {self._argv[0]!r}: {exc.strerror or exc}") from exc
            finally:
                stdout.close_child_end()
                stderr.close_child_end()
            try:
                await _exit_or(process, overflow)
            finally:
                # Runs on success too: an agent may leave children behind in its process group.
                await asyncio.shield(stop_process_tree(process))
            # The agent has ended: what it wrote is in the pipes, and reading them cannot block.
            stdout.drain()
            stderr.drain()
        out = stdout.text()
        err = stderr.text()
        self._transcript(
            f"[{phase}] stdout:\n{stdout.logged()}" + (f"[{phase}] stderr:\n{stderr.logged()}" if err else "")
        )
        for name, stream in (("stdout", stdout), ("stderr", stderr)):
            if stream.overflowed:
                raise AgentError(
                    f"the agent wrote more than {self._max_output} bytes to {name} "
                    "(backend.max_output_bytes); it was stopped"
                )
        if process.returncode != 0:
            # The tokens a failing program reports were spent all the same (budgets read the totals).
            self._usage = add_reported_usage(self._usage, await asyncio.to_thread(_reported_usage, out))
            tail = err.strip()[-STDERR_TAIL_CHARS:].replace("\n", " | ")
            raise AgentError(f"command exited with code {process.returncode}" + (f": {tail}" if tail else ""))
        reply = await asyncio.to_thread(parse_json, out, "stdout")
        if not isinstance(reply, dict):
            raise AgentError(f"reply must be a JSON object, got {type(reply).__name__}")
        self._usage = add_reported_usage(self._usage, reply.get("usage"))
        return reply


def _reported_usage(out: str) -> object:
    """The ``usage`` of a reply on ``out``, if it is a JSON object that has one."""
    try:
        reply = parse_json(out, "stdout")
    except AgentError:
        return None
    return reply.get("usage") if isinstance(reply, dict) else None


async def _exit_or(process: asyncio.subprocess.Process, event: asyncio.Event) -> None:
    """Wait until ``process`` exits or ``event`` is set."""
    waits = {asyncio.ensure_future(process.wait()), asyncio.ensure_future(event.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


class _Capture:
    """One output stream of an agent: a pipe read by the event loop as data comes, kept up to ``limit`` bytes.

    A pipe rather than a file, so that an endless writer fills neither memory nor disk: past the
    limit the pipe is closed (the writer gets EPIPE) and ``on_overflow`` is called. A child the
    agent leaves behind may keep the pipe open for ever, so nobody waits for its end-of-file: once
    the agent has exited, :meth:`drain` takes what the pipe holds and the rest is not read.
    """

    def __init__(self, limit: int, on_overflow: Callable[[], None]) -> None:
        self._limit = limit
        self._on_overflow = on_overflow
        self._data = bytearray()
        self.overflowed = False
        self._loop = asyncio.get_running_loop()
        self._read_end: int | None
        self._read_end, self.child_end = os.pipe()
        os.set_blocking(self._read_end, False)
        self._loop.add_reader(self._read_end, self.drain)

    def drain(self) -> None:
        """Read what the pipe holds now; never blocks."""
        while self._read_end is not None:
            try:
                chunk = os.read(self._read_end, min(1 << 16, self._limit + 1 - len(self._data)))
            except BlockingIOError:
                return
            if not chunk:
                self._stop_reading()
                return
            self._data += chunk
            if len(self._data) > self._limit:
                del self._data[self._limit :]
                self.overflowed = True
                self._stop_reading()
                self._on_overflow()

    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")

    def logged(self) -> str:
        """What the transcript keeps: all of it, or the head of a stream that passed the limit."""
        if not self.overflowed:
            return self.text()
        head = self._data[:OVERFLOW_LOG_BYTES].decode("utf-8", errors="replace")
        return f"{head}\n[... cut: more than {self._limit} bytes (backend.max_output_bytes)]\n"

    def close_child_end(self) -> None:
        if self.child_end >= 0:
            os.close(self.child_end)
            self.child_end = -1

    def _stop_reading(self) -> None:
        if self._read_end is not None:
            self._loop.remove_reader(self._read_end)
            os.close(self._read_end)
            self._read_end = None

    def __enter__(self) -> _Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_child_end()
        self._stop_reading()
