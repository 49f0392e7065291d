"""The launcher: one process per home that forks monitors, so a start costs a fork, not an interpreter.

Started as `python -I -S launcher.py HOME IDLE` by `launch.start`, with no environment but a
padding variable. It detaches (fork, setsid), takes `<home>/launcher.lock` (a second launcher
gives up), loads the monitor's code, listens on `<home>/launcher.sock` (mode 0600) and serves one
request at a time: the caller's uid must be its own (SO_PEERCRED), the request names a shell of
this home and carries the environment and what else the monitor must inherit (`launch.context`).
It answers `forked` once a child exists, or `refused WHY`; the monitor in that child answers `ok
PID` or `error WHY` on the same connection, exactly as on the pipe of a monitor started directly.

It is an accelerator, never an authority: it keeps no state, never takes the admission lock, and
its monitors are not its children (forked twice, each in its own session), so killing it touches
no running shell. After IDLE seconds without a request, or once its socket is no longer its own
(the home was removed), it removes the socket, answers what was already waiting and exits.

A fork inherits what an exec would reset, so the child closes the launcher's descriptors, takes
the caller's process settings, points its output at the shell's monitor.log, and rewrites the
command line and environment the kernel shows for it (`/proc/<pid>/cmdline`, `environ`) into a
monitor's: monitors are recognised there (`proc.MONITOR_VAR`). The launcher holds no threads, no
random state the monitor uses, and no signal handlers of its own.
"""

from __future__ import annotations

import _ctypes
import _socket
import fcntl
import gc
import os
import resource
import select
import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from supervisor import admission, launch, monitor, proc  # noqa: F401 - admission: loaded for the monitors' hand-off
from supervisor import layout as lay

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

# How long a caller may take to send its request before the launcher moves on to the next one.
REQUEST_SECONDS = 1.0
# How often an idle launcher checks that its socket is still its own.
CHECK_SECONDS = 5.0
BACKLOG = 128


class Refused(Exception):
    """Why the launcher does not start a monitor for a request; the caller then starts it directly."""


class Launcher:
    def __init__(self, home: str, idle: float) -> None:
        self.layout = lay.Layout(home)
        self.idle = idle
        self.identity = launch.identity()
        self.home_id = _file_id(home)
        self.lock = -1
        self.folder = -1
        self.listener: _socket.socket | None = None
        self.socket_id: tuple[int, int] | None = None
        # The launcher's end of a socket pair to the spare: a process forked in advance (twice, in its
        # own session, like a monitor) that waits to become the next monitor.
        self.spare: _socket.socket | None = None

    def open(self) -> bool:
        """Take the home's launcher lock and listen; False when another launcher has it or the home is unusable."""
        if self.layout.unsafe():
            return False
        self.lock = os.open(os.path.join(self.layout.home, launch.LOCK),
                            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.folder = os.open(self.layout.home, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        path = self._path()
        try:
            os.unlink(path)  # left by a launcher that died: the lock says none other runs
        except FileNotFoundError:
            pass
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        umask = os.umask(0o177)  # created owner-only, never briefly open to others
        try:
            listener.bind(path)
        finally:
            os.umask(umask)
        listener.listen(BACKLOG)
        self.listener = listener
        self.socket_id = _file_id(path)
        return True

    def serve(self) -> None:
        """Answer requests until IDLE seconds pass without one, or the socket is no longer ours."""
        assert self.listener is not None
        # Objects loaded so far are never collected: a monitor's garbage collection then leaves the
        # pages it shares with the launcher alone.
        gc.freeze()
        self._new_spare()
        until = time.monotonic() + self.idle
        while True:
            left = until - time.monotonic()
            if left <= 0 or _file_id(self._path()) != self.socket_id:
                break
            if select.select([self.listener], [], [], min(left, CHECK_SECONDS))[0]:
                self._accept()
                until = time.monotonic() + self.idle
            if self.spare is None:
                self._new_spare()  # after the answer: not on the way of the start that used the last one
            _reap()
        # Callers that connected before the socket went are still answered; later ones find none.
        if _file_id(self._path()) == self.socket_id:
            os.unlink(self._path())
        self.listener.setblocking(False)
        while self._accept():
            pass
        self.listener.close()
        if self.spare is not None:
            self.spare.close()  # the spare sees the end and exits

    def _path(self) -> str:
        return f"/proc/self/fd/{self.folder}/{launch.SOCKET}"

    def _accept(self) -> bool:
        assert self.listener is not None
        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]  # the C socket's accept: a bare fd
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return False
        conn = _socket.socket(fileno=fd)
        try:
            conn.settimeout(REQUEST_SECONDS)
            self._handle(conn)
        except OSError:
            pass  # the caller went away: it falls back or is gone
        finally:
            conn.close()
        return True

    def _handle(self, conn: _socket.socket) -> None:
        _, uid = launch.peer(conn)
        try:
            line = _read_line(conn)
            if uid != os.geteuid():
                raise Refused("this launcher serves its owner only")
            request = self._request(line)
        except Refused as exc:
            conn.sendall(f"refused {exc}\n".encode())
            return
        # From here until its fork shows up as the monitor, the launcher stands for it: a reader that
        # finds the caller gone waits for a monitor on its way rather than giving the shell up.
        if not retitle(None, f"{proc.MONITOR_VAR}={lay.Layout(request['home']).shell_dir(request['shell_id'])}"):
            conn.sendall(b"refused the home's path is too long for the launcher\n")
            return
        if self._hand_to_spare(conn, line):
            child = 1
        else:
            try:
                child = os.fork()
            except OSError as exc:
                child = -1
                conn.sendall(f"refused cannot fork: {exc.strerror}\n".encode())
            if child == 0:
                self._become_monitor(lambda: self._monitor(conn.detach(), request))
        retitle(None, f"{launch.PAD_VAR}={launch.PAD}")
        if child > 0:
            conn.sendall(b"forked\n")

    def _hand_to_spare(self, conn: _socket.socket, line: bytes) -> bool:
        """Pass the request and the caller's connection to the spare; False when there is none that takes them."""
        spare, self.spare = self.spare, None
        if spare is None:
            return False
        try:
            # One message (a sequenced-packet pair): whole or not at all, never half read by a spare.
            spare.sendmsg([line], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, conn.fileno().to_bytes(4, sys.byteorder))])
            return True
        except OSError:
            return False  # gone (killed), or a request larger than a message
        finally:
            spare.close()

    def _new_spare(self) -> None:
        """Fork the spare: forked twice and in its own session, as a monitor is, so that it can become one."""
        try:
            ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        except OSError:
            return
        try:
            child = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return
        if child == 0:
            ours.close()
            self._become_monitor(lambda: self._wait_as_spare(theirs))
        theirs.close()
        self.spare = ours

    def _request(self, line: bytes) -> dict[str, Any]:
        try:
            request = lay.loads(line.decode())
        except (UnicodeDecodeError, ValueError):
            raise Refused("the request is not JSON") from None
        if not isinstance(request, dict) or not lay.is_shell_id(request.get("shell_id")):
            raise Refused("the request names no shell")
        home = request.get("home")
        if not isinstance(home, str) or _file_id(home) != self.home_id:
            raise Refused(f"this launcher serves {self.layout.home} only")
        if lay.safe_dir(os.path.join(home, "shells", request["shell_id"])):
            raise Refused("the shell's directory is not one this user made")
        env, log, context = request.get("env"), request.get("log"), request.get("context")
        if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
            raise Refused("the environment is not a mapping of strings")
        if not (isinstance(log, str) and isinstance(context, dict)):
            raise Refused("the request lacks the log or the process settings")
        if context.get("identity") != self.identity:
            raise Refused("the caller differs from the launcher in user, groups, capabilities, cgroup or namespaces")
        return request

    def _become_monitor(self, become: Callable[[], int]) -> NoReturn:
        """In a fork of the launcher: `become` the monitor of a shell (or the spare), then exit with its code."""
        code = 1
        try:
            for fd in (self.lock, self.folder, self.listener.detach() if self.listener else -1):
                if fd >= 0:
                    os.close(fd)
            code = become()
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _wait_as_spare(self, pair: _socket.socket) -> int:
        """As the spare: fork away from the launcher, wait for a request, and become its monitor."""
        if os.fork():
            return 0  # the spare is nobody's child: the launcher reaps this process at once
        os.setsid()
        try:
            line, ancillary, _, _ = pair.recvmsg(launch.MAX_REQUEST_BYTES, _socket.CMSG_SPACE(4))
        except OSError:
            return 0
        fds = [int.from_bytes(data[:4], sys.byteorder) for level, kind, data in ancillary
               if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS]
        if not fds:
            return 0  # the launcher closed the pair: it has exited
        os.set_inheritable(fds[0], False)  # received descriptors would pass on to the job
        request = lay.loads(line.decode())
        shell_dir = lay.Layout(request["home"]).shell_dir(request["shell_id"])
        if not retitle(None, f"{proc.MONITOR_VAR}={shell_dir}"):
            os.write(fds[0], b"refused the home's path is too long for the launcher\n")
            return 0
        return self._monitor(fds[0], request, detached=True)

    def _monitor(self, reply: int, request: dict[str, Any], *, detached: bool = False) -> int:
        """Become the monitor of `request`'s shell, answering on `reply`; forked once more unless `detached`."""
        home, shell_id = request["home"], request["shell_id"]
        try:
            _inherit(request["context"])
            log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if not retitle("\0".join(proc.monitor_argv(home, shell_id, reply)), None):
                raise Refused("the launcher's command line has no room for the monitor's")
            if not detached and os.fork():
                return 0  # the monitor is nobody's child: the launcher reaps this process at once
        except (OSError, ValueError, TypeError, KeyError, Refused) as exc:
            # Nothing was started: the caller starts the monitor directly.
            os.write(reply, f"refused {getattr(exc, 'strerror', None) or exc}\n".encode())
            return 0
        if not detached:
            os.setsid()
        null = os.open("/dev/null", os.O_RDONLY)
        for fd, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(fd, target)
        os.close(null)
        os.close(log)
        monitor.Monitor(lay.Layout(home), shell_id, reply, request["env"]).run()
        return 0


def _inherit(context: dict[str, Any]) -> None:
    """Take the caller's process settings (a fork keeps the launcher's); Refused when one cannot be taken."""
    os.umask(int(context["umask"]))
    for name, (soft, hard) in context["rlimits"].items():
        which = getattr(resource, name)
        if resource.getrlimit(which) != (soft, hard):
            resource.setrlimit(which, (soft, hard))
    if os.getpriority(os.PRIO_PROCESS, 0) != context["nice"]:
        os.setpriority(os.PRIO_PROCESS, 0, int(context["nice"]))
    if sorted(os.sched_getaffinity(0)) != context["cpus"]:
        os.sched_setaffinity(0, context["cpus"])
    if context["oom_score_adj"] is not None:
        with open("/proc/self/oom_score_adj", "r+b", buffering=0) as f:
            if int(f.read()) != context["oom_score_adj"]:
                f.write(str(context["oom_score_adj"]).encode())


class _Address(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "P"


class _Bytes(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "z"


class _Size(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "L"


class _MemMove(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL
    _restype_ = _Address
    _argtypes_ = (_Address, _Bytes, _Size)


# libc's memmove through the C core of ctypes: the ctypes package would cost the launcher and
# every monitor it forks memory they do not need.
_memmove = _MemMove(_ctypes._memmove_addr)  # type: ignore[attr-defined]


# Where this process's command line and environment lie: laid out by its exec, so the same in its forks.
_AREAS: list[int] = []


def _areas() -> list[int]:
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    # Fields 48 to 51 of /proc/<pid>/stat (counted from 1): arg_start, arg_end, env_start, env_end.
    _AREAS[:] = [int(value) for value in fields[45:49]]
    return _AREAS


def retitle(argv: str | None, environ: str | None) -> bool:
    """Rewrite what the kernel shows of this process's command line and environment (NUL-separated text).

    The kernel reads both from this process's memory, from the areas its exec laid out; they are
    written in place and the rest filled with NULs. False (nothing written) when `argv` or
    `environ` does not fit. What Python holds in sys.argv and os.environ are copies and stay as they are.
    """
    arg_start, arg_end, env_start, env_end = _AREAS or _areas()
    areas = [(start, end, text) for start, end, text in ((arg_start, arg_end, argv), (env_start, env_end, environ))
             if text is not None]
    payloads = []
    for start, end, text in areas:
        data = os.fsencode(text) + b"\0"
        if len(data) > end - start:
            return False
        payloads.append((start, data + b"\0" * (end - start - len(data))))
    for start, data in payloads:
        _memmove(start, data, len(data))
    return True


def _read_line(conn: _socket.socket) -> bytes:
    """The request: one line, read within REQUEST_SECONDS."""
    deadline = time.monotonic() + REQUEST_SECONDS
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Refused("the request did not arrive in time")
        conn.settimeout(left)
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise Refused("the request ended early")
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            return b"".join(chunks)
        if size > launch.MAX_REQUEST_BYTES:
            raise Refused("the request is too large")


def _reap() -> None:
    """Reap the forks that have exited: each exits as soon as it has forked its monitor.

    Not waited for one by one, so the next request is served meanwhile.
    """
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def main() -> None:
    home, idle = sys.argv[1], float(sys.argv[2])
    if os.fork():
        os._exit(0)
    os.setsid()
    os.chdir("/")  # holds no directory of its caller's: it may be removed or unmounted
    launcher = Launcher(home, idle)
    if launcher.open():
        launcher.serve()


if __name__ == "__main__":
    main()
