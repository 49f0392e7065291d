"""One automation-mode run: wires config, workspaces, log directory, backends, engine and status.

:func:`Run.execute` returns the exit code. The run's edges (clock, environment, stdout reporter)
are arguments so that tests can replace them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from supervisor.automation.schema import FinalPhase, escape_surrogates

from . import procs, signals
from .backends import Backend, build_backend
from .config import CoordinationConfig, OpenAIBackendConfig
from .errors import ExecutionError, ExitCode
from .events import EventLog
from .limits import clean_text, clip
from .logdir import LogDir
from .protocol.engine import Engine, EngineEvent, Limits
from .protocol.messages import render_context
from .protocol.state import AgentSpec
from .report import Reporter
from .status import StatusWriter
from .workspaces import RunPaths

log = logging.getLogger("coordinator")


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs, already validated."""

    config: CoordinationConfig
    raw_config: Any
    config_path: Path
    question: str
    run_cwd: Path
    instance_id: str
    log_dir: Path | None = None
    orchestrator_timeout: float | None = None
    agent_timeout: float | None = None
    cli_args: list[str] = field(default_factory=list)
    debug: bool = False
    print_answer: bool = False

    @property
    def orchestrator_timeout_seconds(self) -> float:
        return self.orchestrator_timeout or self.config.timeout_settings.orchestrator_timeout_seconds

    @property
    def agent_timeout_seconds(self) -> float:
        return self.agent_timeout or self.config.timeout_settings.agent_timeout_seconds


@dataclass
class Outcome:
    exit_code: ExitCode
    phase: FinalPhase
    reason: str = ""
    winner: str | None = None
    answer: str | None = None
    answer_file: Path | None = None

    def __post_init__(self) -> None:
        # The reason may quote agents and exceptions; it ends up in status.json and the ERROR line.
        self.reason = clip(clean_text(self.reason))


def _version() -> str:
    try:
        return metadata.version("mgsup")
    except metadata.PackageNotFoundError:
        return "unknown"


class Run:
    """A single coordination run in automation mode."""

    def __init__(
        self,
        request: RunRequest,
        *,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        process_start: float | None = None,
    ) -> None:
        self.request = request
        self._reporter = reporter or Reporter()
        self._clock = clock
        self._environ = os.environ if environ is None else environ
        self._process_start = process_start if process_start is not None else clock()
        self._interrupt = asyncio.Event()
        self._signal_name = ""

    async def execute(self) -> int:
        """Run coordination to its end and return the exit code (DESIGN §6)."""
        start = self._clock()
        loop = asyncio.get_running_loop()
        # From the first moment to the end of the sweep a signal only records the interrupt: a
        # handler that raised or killed here would leave status.json unfinished or agents running.
        previous = {sig: signal.getsignal(sig) for sig in signals.catchable()}
        for sig in previous:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            return await self._execute(start)
        finally:
            for sig, before in previous.items():
                loop.remove_signal_handler(sig)
                if before is not None:
                    signal.signal(sig, before)

    async def _execute(self, start: float) -> int:
        req = self.request
        procs.become_subreaper()
        self.paths = RunPaths.plan(req.config, req.run_cwd, req.instance_id)
        self.paths.create()
        self.logdir = LogDir.create(req.run_cwd, req.log_dir, self._clock)
        handlers = _setup_logging(self.logdir.log_file, req.debug)
        self.backends: dict[str, Backend] = {}
        self._transcripts = {agent.id: self.logdir.transcript(agent.id) for agent in req.config.agents}
        try:
            self._write_metadata(start)
            specs = []
            for agent in req.config.agents:
                workspace = self.paths.agent_workspaces[agent.id]
                specs.append(AgentSpec(agent.id, agent.system_message, str(workspace)))
                self.backends[agent.id] = build_backend(
                    agent,
                    workspace=workspace,
                    transcript=self._transcripts[agent.id],
                    timeout=req.agent_timeout_seconds,
                    environ=self._environ,
                )
            limits = Limits(
                agent_timeout=req.agent_timeout_seconds,
                max_new_answers=req.config.orchestrator.max_new_answers_per_agent,
                max_retries=req.config.orchestrator.max_turn_retries,
            )
            self.engine = Engine(
                specs,
                self.backends,
                question=req.question,
                limits=limits,
                observer=self._observe,
                clock=self._clock,
            )
            self.events = EventLog(
                self.logdir.events_path,
                {
                    "session_id": self.logdir.session_id,
                    "question": req.question,
                    "instance_id": req.instance_id,
                    "agents": [a.id for a in req.config.agents],
                    "start_time": start,
                },
                clock=self._clock,
            )
            self.status = StatusWriter(
                self.logdir.status_path,
                self.engine.state,
                session_id=self.logdir.session_id,
                instance_id=req.instance_id,
                start_time=start,
                usage=lambda: {agent_id: backend.usage for agent_id, backend in self.backends.items()},
                models={agent.id: agent.backend.model for agent in req.config.agents
                        if isinstance(agent.backend, OpenAIBackendConfig)},
                clock=self._clock,
            )
            self.status.write()
            self._reporter.started(self.logdir.path, self.logdir.status_path, req.question)
            self.status.start_heartbeat()
            try:
                outcome = await self._run_until_interrupted()
            except Exception as exc:
                # A bug or an I/O failure (disk full...) must still end in a truthful final status.
                log.exception("coordination failed unexpectedly")
                outcome = Outcome(ExitCode.EXECUTION_ERROR, "error", reason=f"internal error: {exc!r}")
            self._finish(outcome, start)
            return int(outcome.exit_code)
        finally:
            if hasattr(self, "status"):
                await self.status.stop_heartbeat()
            if hasattr(self, "events"):
                self.events.close()
            for backend in self.backends.values():
                with contextlib.suppress(Exception):
                    await backend.aclose()
            procs.end_descendants()
            for handler in handlers:
                logging.getLogger("coordinator").removeHandler(handler)
                handler.close()

    # Stages -------------------------------------------------------------------------------------

    async def _run_until_interrupted(self) -> Outcome:
        main = asyncio.create_task(self._coordinate(), name="coordination")
        interrupted = asyncio.create_task(self._interrupt.wait(), name="interrupt")
        await asyncio.wait({main, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        interrupted.cancel()
        if main.done():
            return main.result()
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        log.warning("interrupted by %s", self._signal_name)
        return Outcome(ExitCode.INTERRUPTED, "interrupted", reason=f"interrupted by {self._signal_name}")

    async def _coordinate(self) -> Outcome:
        limit = self.request.orchestrator_timeout_seconds
        try:
            async with asyncio.timeout(limit):
                winner = await self.engine.run()
        except TimeoutError:
            return await self._after_timeout(limit)
        except ExecutionError as exc:
            return Outcome(ExitCode.EXECUTION_ERROR, "error", reason=str(exc))
        try:
            answer = await self.engine.present(winner, time_limit=self.request.agent_timeout_seconds)
        except ExecutionError as exc:
            return Outcome(ExitCode.EXECUTION_ERROR, "error", reason=str(exc), winner=winner)
        return self._save_final(Outcome(ExitCode.SUCCESS, "completed", winner=winner, answer=answer))

    async def _after_timeout(self, limit: float) -> Outcome:
        reason = f"orchestrator timeout after {limit:g}s"
        self.events.record("orchestrator_timeout", None, {"seconds": limit})
        winner = self.engine.state.select_winner()
        if winner is None:
            return Outcome(ExitCode.TIMEOUT, "timeout", reason=f"{reason} with no answer")
        try:
            answer = await self.engine.present(winner, time_limit=self.request.agent_timeout_seconds)
        except ExecutionError as exc:
            log.warning("%s; saving the best answer as given: %s", reason, exc)
            latest = self.engine.state.agents[winner].latest
            assert latest is not None
            answer = latest.content
        return self._save_final(Outcome(ExitCode.TIMEOUT, "timeout", reason=reason, winner=winner, answer=answer))

    def _save_final(self, outcome: Outcome) -> Outcome:
        assert outcome.winner is not None and outcome.answer is not None
        request = self.engine.state.present_request(outcome.winner)
        outcome.answer_file = self.logdir.write_final(
            agent_id=outcome.winner,
            moment=self._clock(),
            answer=outcome.answer,
            context=render_context(request),
            workspace=self._owned_workspace(outcome.winner),
        )
        return outcome

    def _finish(self, outcome: Outcome, start: float) -> None:
        self.status.finalize(outcome.phase, int(outcome.exit_code), final_answer=outcome.answer, reason=outcome.reason)
        self.events.record(
            "session_end",
            outcome.winner,
            {"exit_code": int(outcome.exit_code), "phase": outcome.phase, "reason": outcome.reason},
        )
        if outcome.winner and outcome.answer is not None and outcome.answer_file is not None:
            self._reporter.winner(outcome.winner, outcome.answer_file, self._clock() - start, outcome.answer)
        else:
            self._reporter.error(outcome.reason)
        self._reporter.completed(len(self.request.config.agents), self._clock() - self._process_start)
        if self.request.print_answer and outcome.answer is not None:
            self._reporter.answer(outcome.answer)

    # Observers ----------------------------------------------------------------------------------

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self._interrupt.is_set():
            self._signal_name = sig.name
            self._interrupt.set()

    def _observe(self, event: EngineEvent) -> None:
        state = self.engine.state
        agent_id = event.agent_id
        details = dict(event.details)
        if event.kind == "turn_started" and agent_id is not None:
            others = {a.agent_id: a.anon_id for a in state.agents.values() if a.agent_id != agent_id and a.latest}
            self.paths.prepare_temporary(agent_id, others)
        elif event.kind == "new_answer" and agent_id is not None and event.request is not None:
            self.paths.save_snapshot(agent_id)
            folder = self.logdir.snapshot(
                kind="answer",
                label=details["label"],
                agent_id=agent_id,
                moment=self._clock(),
                files={"answer.txt": details["content"], "context.txt": render_context(event.request)},
                workspace=self._owned_workspace(agent_id),
            )
            details["snapshot"] = str(folder)
        elif event.kind == "vote" and agent_id is not None and event.request is not None:
            label = f"{state.agents[agent_id].anon_id}.vote{details['vote_number']}"
            vote = {k: details[k] for k in ("voted_for", "voted_for_anon", "voted_for_label", "reason")}
            folder = self.logdir.snapshot(
                kind="vote",
                label=label,
                agent_id=agent_id,
                moment=self._clock(),
                files={
                    "vote.json": json.dumps(vote, indent=2) + "\n",
                    "context.txt": render_context(event.request),
                },
                workspace=self._owned_workspace(agent_id),
            )
            details["snapshot"] = str(folder)
        level = (
            logging.WARNING if event.kind in ("agent_error", "agent_timeout", "presentation_failed") else logging.INFO
        )
        log.log(level, "%s %s %s", event.kind, agent_id or "-", _short(details))
        if agent_id is not None and event.kind not in ("turn_started",):
            self._transcripts[agent_id](f"== {event.kind}: {_short(details)}")
        self.events.record(
            event.kind,
            agent_id,
            details,
            {"phase": state.phase, "current_answers": [a.label for a in state.current_answers()]},
        )
        self.status.write()

    def _owned_workspace(self, agent_id: str) -> Path | None:
        # An agent without its own workspace works in the run cwd, which holds .massgen itself.
        return self.paths.agent_workspaces[agent_id] if agent_id in self.paths.own_workspace else None

    def _write_metadata(self, start: float) -> None:
        req = self.request
        self.logdir.write_metadata(
            {
                "question": req.question,
                "config_path": str(req.config_path.resolve()),
                "config": req.raw_config,
                "cli_args": req.cli_args,
                "instance_id": req.instance_id,
                "run_cwd": str(req.run_cwd.resolve()),
                "log_dir": str(self.logdir.path),
                "start_time": datetime.fromtimestamp(start).isoformat(),
                "start_timestamp": start,
                "versions": {"mgsup": _version(), "python": platform.python_version()},
                "timeouts": {
                    "orchestrator_timeout_seconds": req.orchestrator_timeout_seconds,
                    "agent_timeout_seconds": req.agent_timeout_seconds,
                },
            }
        )


def _short(details: Mapping[str, Any], limit: int = 160) -> str:
    text = escape_surrogates(json.dumps(details, ensure_ascii=False, default=str))
    return text if len(text) <= limit else text[:limit] + "..."


def _setup_logging(log_file: Path, debug: bool) -> list[logging.Handler]:
    logger = logging.getLogger("coordinator")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    file_handler = logging.FileHandler(log_file, encoding="utf-8", errors="backslashreplace")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    stderr_handler.setFormatter(logging.Formatter("mgcoord: %(levelname)s %(message)s"))
    for handler in (file_handler, stderr_handler):
        logger.addHandler(handler)
    return [file_handler, stderr_handler]
