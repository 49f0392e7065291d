"""The entrypoint of a cluster shell on its node: `python3 -m supervisor.cluster.runner SPEC_JSON`.

Ray starts it as the job's entrypoint (its stdout is the job's Ray log). It runs the job under
mgsup's own monitor, in this process: the job gets its own process group, this process becomes a
child subreaper, the timeout is enforced, and when the job's main process exits or Ray stops the
job (SIGTERM), its whole tree is stopped, double-forked descendants included. `ray job stop` alone
would leave those behind.

The monitor writes the job's stdout and stderr into one FIFO; a relay thread (`relay`) copies it
into the Ray log and, for a coordination run, relays its status.json whenever it changes. At the
end the runner writes the run's final status, its final answer and the job's final state as
records (`framing`), and exits with the job's exit code (128 + N for signal N). Stdlib only, so a
node needs nothing but Ray and the shipped package.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from supervisor import layout as lay
from supervisor import lifecycle
from supervisor.automation import runners
from supervisor.cluster import framing
from supervisor.cluster.relay import Log, Relay
from supervisor.exitcodes import job_exit_code
from supervisor.monitor import STOP_SIGNALS, Monitor, _initial_environ

STOP_SIGNALS_SET = frozenset(STOP_SIGNALS)

# After the job ended, the relay gets this long to copy what is left in the FIFO.
DRAIN_SECONDS = 5.0
# The final answer travels in the log; a longer one is cut (the record says so).
ANSWER_MAX_BYTES = 1024 * 1024


class NodeMonitor(Monitor):
    """The monitor, run inside the runner, whose stop signals stay blocked until its handlers are in place.

    Ray may stop the job at any moment, even while the runner is still preparing it: the signal then
    waits (blocked since the runner started) and reaches the monitor's loop as soon as it can act on
    it, instead of killing the runner before it has a job to stop, or being lost.
    """

    def _install_handlers(self) -> None:
        super()._install_handlers()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class Runner:
    def __init__(self, spec: dict[str, Any], home: str, log: Log) -> None:
        self.spec = spec
        self.shell_id: str = spec["shell_id"]
        self.layout = lay.Layout(home)
        self.log = log

    def run(self) -> int:
        self.log.record(framing.BEGIN, {"host": socket.gethostname(), "time": time.time()})
        if STOP_SIGNALS_SET & signal.sigpending():
            # Stopped while it waited for resources (Ray delivers such a stop once the job starts).
            now = time.time()
            return self._end({**lifecycle.removed_from_queue(lifecycle.new(now, queued=False), now),
                              "message": "stopped before the job started"})
        job_cwd = self._job_cwd()
        argv = self._argv()
        fifo, holder = self._prepare(argv, job_cwd)
        relay = Relay(fifo, self.log, job_cwd=job_cwd, coordination=self.spec.get("coordination") is not None)
        relay.start()
        try:
            NodeMonitor(self.layout, self.shell_id, os.open(os.devnull, os.O_WRONLY)).run()
        finally:
            # The job's writers are gone (the monitor stopped its whole tree): the FIFO ends once ours closes.
            os.close(holder)
            relay.join(DRAIN_SECONDS)
            self.log.close_output()
        if relay.coordination:
            relay.relay_status()
            if relay.answer_file:
                self.log.record(framing.ANSWER, _answer(relay.answer_file))
        return self._end(lay.read_json(self.layout.file(self.shell_id, lay.STATE)))

    def _end(self, state: dict[str, Any]) -> int:
        self.log.record(framing.END, {**state, "host": socket.gethostname()})
        # Ray sees the job's own exit code; 128 + N for a signal, as a shell would.
        return job_exit_code(state)

    def _job_cwd(self) -> str:
        base = find_shipped(self.spec["workdir"])
        workspace = self.spec.get("workspace")
        if workspace:
            base = os.path.join(base, ".mgsup", "workspaces", workspace)
            os.makedirs(base, exist_ok=True)
        return os.path.normpath(base)

    def _argv(self) -> list[str]:
        coordination = self.spec.get("coordination")
        if coordination is None:
            return list(self.spec["argv"])
        folder = coordination.get("folder")
        config = os.path.join(find_shipped(folder) if folder else self._job_cwd(), coordination["config"])
        program = list(coordination["program"])
        if program[0] == runners.MGCOORD:
            # mgcoord by name is the copy shipped with the job: a node need not have one on its PATH.
            program[:1] = [sys.executable, "-m", "coordinator"]
        runner = runners.ResolvedRunner(coordination["runner"], program)
        return runner.argv(config, coordination["question"], self.shell_id[6:])

    def _prepare(self, argv: list[str], job_cwd: str) -> tuple[int, int]:
        """Write the monitor's shell record; the FIFO's read end and a write end held until the job ended."""
        self.layout.ensure()
        os.mkdir(self.layout.shell_dir(self.shell_id), 0o700)
        file = self.layout.file
        lay.write_json(file(self.shell_id, lay.SPEC), {"argv": argv, "cwd": job_cwd,
                                                       "timeout": self.spec.get("timeout"), "max_concurrent": 1})
        lay.write_json(file(self.shell_id, lay.STATE), lifecycle.new(time.time(), queued=False))
        lay.write_json(file(self.shell_id, lay.ENV), self._job_env())
        # Ray's stop (SIGTERM) then stops the tree with this grace before SIGKILL.
        lay.write_json(file(self.shell_id, lay.KILL_REQUEST), {"signal": 15, "grace": self.spec.get("grace", 5.0)})
        os.mkfifo(file(self.shell_id, lay.STDOUT), 0o600)
        os.symlink(lay.STDOUT, file(self.shell_id, lay.STDERR))
        # Opened before the monitor opens the write side, so that neither open blocks.
        fifo = os.open(file(self.shell_id, lay.STDOUT), os.O_RDONLY | os.O_NONBLOCK)
        holder = os.open(file(self.shell_id, lay.STDOUT), os.O_WRONLY | os.O_NONBLOCK)
        return fifo, holder

    def _job_env(self) -> dict[str, str]:
        """The node's environment for the job (Ray's, with the runtime_env's env_vars), or only the names given."""
        env = _initial_environ()
        names = set(self.spec.get("env_names") or ())
        for name in self.spec.get("drop_env") or ():
            if name not in names:
                env.pop(name, None)
        if not self.spec.get("inherit_env", True):
            env = {name: value for name, value in env.items() if name in names}
        return env


def find_shipped(name: str) -> str:
    """Where a folder that travelled with the job (a `py_modules` entry) is on this node.

    Ray unpacks each entry in a folder of its own and puts that folder on PYTHONPATH: the entry is
    found there by its name (the submitting side sends no two of one name).
    """
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        candidate = os.path.join(entry, name)
        if entry and os.path.isdir(candidate):
            return candidate
    raise SystemExit(f"mgsup: the folder {name!r} did not arrive on this node")


def _answer(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(ANSWER_MAX_BYTES + 1)
    except OSError as exc:
        return {"path": path, "text": None, "error": exc.strerror}
    return {"path": path, "text": data[:ANSWER_MAX_BYTES].decode("utf-8", errors="replace"),
            "truncated": len(data) > ANSWER_MAX_BYTES}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m supervisor.cluster.runner SPEC_JSON", file=sys.stderr)
        return 2
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    home = tempfile.mkdtemp(prefix="mgsup-runner-")
    try:
        return Runner(json.loads(args[0]), home, Log(sys.stdout.fileno())).run()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
