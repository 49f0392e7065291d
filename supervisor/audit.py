"""The audit log of the agent tools: `<home>/audit.jsonl`, one JSON object per tool call.

Each line holds the time, the tool, its arguments (environment values replaced by `***`), the
policy's decision (`allowed`, `denied` with the rule, or `invalid` arguments), the result (`ok` or
`error`) and what the call touched (`shell_id`, the shell's `status`). The file is owner-only
(0600). It is bounded: once it passes `$MGSUP_AUDIT_MAX_BYTES` (default 10 MB) it is renamed
`audit.jsonl.1` (the older ones shift to `.2` and `.3`; the oldest is dropped), so at most four
files of that size are kept. Appends from several processes are serialised by a lock file beside it.
Like every record of the home, it is written only in a home that this user alone controls, and
never through a symbolic link.

>>> append("/tmp/home", {"tool": "list_shells", "arguments": {}, "decision": "allowed", "result": "ok"})
>>> read("/tmp/home", tail=1)[0]["tool"]
'list_shells'
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from typing import Any

from . import settings
from .layout import UnsafeHome, safe_dir

AUDIT_FILE = "audit.jsonl"
LOCK_FILE = "audit.lock"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
KEEP = 3
REDACTED = "***"


def path(home: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(home), AUDIT_FILE)


def max_bytes() -> int:
    """The size at which the log is rotated: $MGSUP_AUDIT_MAX_BYTES, else 10 MB."""
    return settings.whole_number("MGSUP_AUDIT_MAX_BYTES", DEFAULT_MAX_BYTES)


def redact(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """`arguments` with the values of `env` replaced: a list of `NAME=VALUE` keeps the names, a map its keys.

    >>> redact({"command": "make", "env": ["TOKEN=s3cret"]})
    {'command': 'make', 'env': ['TOKEN=***']}
    """
    shown = dict(arguments)
    env = shown.get("env")
    if isinstance(env, list):
        # An item without '=' may be a value sent in the wrong shape: none of it is kept.
        shown["env"] = [f"{item.partition('=')[0]}={REDACTED}" if isinstance(item, str) and "=" in item
                        else REDACTED for item in env]
    elif isinstance(env, Mapping):
        shown["env"] = {str(name): REDACTED for name in env}
    elif env is not None:
        shown["env"] = REDACTED
    return shown


def append(home: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append `record` as one line, rotating the log first when it would pass the size bound."""
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()
    limit = max_bytes()
    home = os.fspath(home)
    if not os.path.isdir(home):
        os.makedirs(home, mode=0o700, exist_ok=True)
        os.chmod(home, 0o700)
    problem = safe_dir(home, follow=True)
    if problem:
        raise UnsafeHome(problem)
    lock = os.open(os.path.join(home, LOCK_FILE), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        target = path(home)
        try:
            size = os.stat(target).st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(line) > limit:
            _rotate(target)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            # A file made by hand, or under a looser umask, is made owner-only too.
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
            os.write(fd, line)
        finally:
            os.close(fd)
    finally:
        os.close(lock)


def _rotate(target: str) -> None:
    for n in range(KEEP - 1, 0, -1):
        if os.path.exists(f"{target}.{n}"):
            os.replace(f"{target}.{n}", f"{target}.{n + 1}")
    os.replace(target, f"{target}.1")


def files(home: str | os.PathLike[str]) -> list[str]:
    """The log's files that exist, oldest first."""
    target = path(home)
    candidates = [f"{target}.{n}" for n in range(KEEP, 0, -1)] + [target]
    return [name for name in candidates if os.path.exists(name)]


def read(home: str | os.PathLike[str], *, tail: int | None = None) -> list[dict[str, Any]]:
    """The records on file, oldest first (the last `tail` of them when given); unreadable lines are skipped."""
    records: list[dict[str, Any]] = []
    for name in reversed(files(home)):
        try:
            with open(name, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            continue  # rotated away since the listing
        batch = []
        for raw in lines:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                batch.append(record)
        records[:0] = batch
        if tail is not None and len(records) >= tail:
            break
    return records if tail is None else records[len(records) - tail:] if tail else []


def describe(record: Mapping[str, Any]) -> str:
    """One record as a line for a person: when, where from, the tool, decision and result, then the details.

    >>> describe({"time": "2025-01-01T10:00:00+00:00", "surface": "mcp", "tool": "kill_shell",
    ...           "arguments": {"shell_id": "shell_1a2b3c4d"}, "decision": "allowed", "result": "ok",
    ...           "status": "killed"})
    '2025-01-01T10:00:00+00:00  mcp  kill_shell  allowed  ok  shell_1a2b3c4d killed'
    """
    head = [str(record.get(key) or "-") for key in ("time", "surface", "tool", "decision", "result")]
    arguments = record.get("arguments")
    details = []
    if isinstance(arguments, Mapping):
        subject = arguments.get("command") or arguments.get("question")
        if subject is not None:
            details.append(json.dumps(subject, ensure_ascii=False))
        elif isinstance(arguments.get("shell_id"), str) and "shell_id" not in record:
            details.append(arguments["shell_id"])
    details += [str(record[key]) for key in ("shell_id", "status") if record.get(key)]
    if record.get("error"):
        details.append(f"error: {record['error']}")
    return "  ".join([*head, " ".join(details)] if details else head)
