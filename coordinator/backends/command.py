"""The ``command`` backend: any program is an agent (JSON on stdin, one JSON object on stdout).

For each turn the program is started in the agent's workspace, in its own process group, gets one
request object on stdin (DESIGN §6) and must print one reply object and exit 0. A cancelled turn
(restart, timeout, interrupt) stops the program with its whole process tree.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import AgentError
from ..procs import stop_process_tree
from ..protocol.messages import Action, CoordinateRequest, NewAnswer, PresentRequest, Vote
from .base import Transcript, Usage, add_reported_usage

STDERR_TAIL_CHARS = 300


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
    default: this process's)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        transcript: Transcript,
        env: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._argv = list(argv)
        self._cwd = cwd
        self._transcript = transcript
        self._env = {**(os.environ if environ is None else environ), **(env or {})}
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
        # Files rather than pipes: a child the agent leaves behind may keep a pipe open, and the
        # turn would then wait for an end-of-file that never comes.
        with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            stdin.write(json.dumps(payload).encode())
            stdin.seek(0)
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._argv,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    cwd=self._cwd,
                    env=self._env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise AgentError(f"cannot start {self._argv[0]!r}: {exc.strerror or exc}") from exc
            try:
                await process.wait()
            finally:
                # Runs on success too: an agent may leave children behind in its process group.
                await asyncio.shield(stop_process_tree(process))
            stdout.seek(0)
            stderr.seek(0)
            out = stdout.read().decode("utf-8", errors="replace")
            err = stderr.read().decode("utf-8", errors="replace")
        self._transcript(
            f"[{payload['phase']}] stdout:\n{out}" + (f"[{payload['phase']}] stderr:\n{err}" if err else "")
        )
        if process.returncode != 0:
            tail = err.strip()[-STDERR_TAIL_CHARS:].replace("\n", " | ")
            raise AgentError(f"command exited with code {process.returncode}" + (f": {tail}" if tail else ""))
        try:
            reply = json.loads(out)
        except json.JSONDecodeError as exc:
            raise AgentError(f"invalid JSON on stdout ({exc.msg}): {out.strip()[:120]!r}") from exc
        if not isinstance(reply, dict):
            raise AgentError(f"reply must be a JSON object, got {type(reply).__name__}")
        self._usage = add_reported_usage(self._usage, reply.get("usage"))
        return reply
