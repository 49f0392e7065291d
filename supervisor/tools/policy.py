"""The tool policy: what an agent may do through the tools, read from a YAML file (DESIGN §14).

Every key is optional; a key left out restricts nothing:

    commands: {allow: ["python3 *", "mgcoord *"], deny: ["*rm -rf*"]}
    cwd_roots: ["~/experiments"]
    env_names: ["OPENAI_API_KEY"]
    max_timeout_seconds: 3600
    max_budget: {max_tokens: 200000, max_cost_usd: 5.0}
    isolate: true
    max_shells_per_session: 5
    read_only: false

A `Policy` is also one agent session: `max_shells_per_session` counts the shells started through
that object (one MCP server, one `supervisor_tools` agent, one `dispatch` caller that passes the
same object each time). `check` decides one call: it returns the arguments to run with (a missing
timeout or budget set to the cap, or a timeout to each attempt's share of it with `retries`, `isolate`
forced) or raises `Denied`, whose message quotes the rule.

>>> policy = load_policy("policy.yaml")
>>> policy.check("kill_shell", {"shell_id": "shell_1a2b3c4d"})
{'shell_id': 'shell_1a2b3c4d'}
"""

from __future__ import annotations

import fnmatch
import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from ..errors import InvalidRequest

# Tools that only read: what a read-only policy allows (wait_shell without kill_on_stall).
READ_TOOLS = frozenset({"get_shell_status", "get_shell_output", "list_shells", "wait_shell"})
START_TOOLS = frozenset({"start_shell", "start_coordination"})
# With an allow list, a command line for /bin/sh may not chain or redirect: the list would see only its start.
SHELL_OPERATORS = (";", "&", "|", "`", "$(", "<", ">", "\n")
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class PolicyError(InvalidRequest):
    """A policy that cannot be used: unreadable, not YAML, or not the policy format.

    The message is `<source>: <problem>`; `problem` alone is kept for callers that locate it themselves.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.problem = problem


class Denied(Exception):
    """A call the policy refuses; `rule` names the rule, the message says why and what is allowed."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class _Rules(BaseModel):
    # Unknown keys are errors: a misspelt rule must not silently leave the agent unrestricted.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandRules(_Rules):
    allow: list[StrictStr] | None = None
    deny: list[StrictStr] = Field(default_factory=list)


class BudgetCap(_Rules):
    max_tokens: Annotated[StrictInt, Field(gt=0)] | None = None
    max_cost_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    max_duration_seconds: Seconds | None = None


class Rules(_Rules):
    """The policy file's content, validated."""

    commands: CommandRules | None = None
    cwd_roots: list[StrictStr] | None = None
    env_names: list[StrictStr] | None = None
    max_timeout_seconds: Seconds | None = None
    max_budget: BudgetCap | None = None
    isolate: StrictBool = False
    max_shells_per_session: Annotated[StrictInt, Field(ge=0)] | None = None
    read_only: StrictBool = False


class Policy:
    """A validated policy and the session it governs (the shells started through it).

    Build one with `load_policy(path)` or `Policy.from_mapping(data)`; `Policy()` restricts nothing.
    Relative `cwd_roots` are taken from `base` (a policy file's own folder); every root is resolved
    to its real path once, here.
    """

    def __init__(self, rules: Rules | None = None, *, source: str = "inline policy",
                 base: str | os.PathLike[str] | None = None) -> None:
        self.rules = rules or Rules()
        self.source = source
        folder = Path(base) if base is not None else Path.cwd()
        self.roots = None if self.rules.cwd_roots is None else [
            os.path.realpath(folder / Path(root).expanduser()) for root in self.rules.cwd_roots]
        self.session = secrets.token_hex(4)
        self._lock = threading.Lock()
        self._started = 0

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "inline policy",
                     base: str | os.PathLike[str] | None = None) -> Policy:
        """A policy from its parsed YAML; PolicyError says what is wrong, located like `commands.allow[0]`."""
        if not isinstance(data, Mapping):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            raise PolicyError(source, f"the policy is {kind}; expected a mapping of rules "
                              "(write {} for a policy without restrictions)")
        try:
            rules = Rules.model_validate(dict(data))
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False):
                where = ".".join(str(part) for part in error["loc"]) or "(root)"
                problems.append(f"{where}: {'unknown rule' if error['type'] == 'extra_forbidden' else error['msg']}")
            raise PolicyError(source, "; ".join(problems)) from None
        return cls(rules, source=source, base=base)

    @property
    def started(self) -> int:
        """How many shells this session has started."""
        return self._started

    # -- deciding ---------------------------------------------------------------------------------

    def check(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments to run `tool` with, or Denied quoting the rule that refuses it.

        `arguments` are the call's validated arguments (None for "the default"); the result may
        set `timeout`, `budget`, `isolate` and `cwd` (a start's cwd becomes the real path that was
        checked; a start without one runs in the current directory, which is checked then).
        """
        r = self.rules
        args = dict(arguments)
        if r.read_only and (tool not in READ_TOOLS or (tool == "wait_shell" and args.get("kill_on_stall"))):
            what = "kill_on_stall kills the shell" if tool == "wait_shell" else f"{tool} changes shells"
            self._deny("read_only: true", f"{what}; only {', '.join(sorted(READ_TOOLS))} are allowed "
                       "(wait_shell without kill_on_stall)")
        if tool not in START_TOOLS:
            return args
        # Only a command line given as one string runs under /bin/sh, where operators can chain commands.
        self._check_command(command_line(tool, args), shell=tool == "start_shell" and isinstance(args["command"], str))
        if self.roots is not None:
            args["cwd"] = self._checked_cwd(args.get("cwd"), self.roots)
        self._check_env(args.get("env"))
        if r.max_timeout_seconds is not None:
            args["timeout"] = self._attempts_timeout(args, r.max_timeout_seconds)
        if tool == "start_coordination" and r.max_budget is not None:
            args["budget"] = self._check_budget(args.get("budget"), r.max_budget)
        if tool == "start_shell" and r.isolate:
            args["isolate"] = True
        return args

    @contextmanager
    def start(self) -> Iterator[None]:
        """Hold a place in the session's shell count while a start runs; given back if the start fails.

        Denied when the session has started `max_shells_per_session` shells. Taken under a lock, so
        concurrent starts never exceed the cap together.
        """
        cap = self.rules.max_shells_per_session
        with self._lock:
            if cap is not None and self._started >= cap:
                self._deny(f"max_shells_per_session: {cap}",
                           f"this session has started {self._started} shells already; wait for them with "
                           "wait_shell and read their results instead of starting more")
            self._started += 1
        try:
            yield
        except BaseException:
            with self._lock:
                self._started -= 1
            raise

    def _deny(self, rule: str, why: str) -> None:
        raise Denied(rule, f"denied by the policy rule {rule} ({self.source}): {why}. Nothing was done")

    def _check_command(self, line: str, *, shell: bool) -> None:
        rules = self.rules.commands
        if rules is None:
            return
        for pattern in rules.deny:
            if fnmatch.fnmatchcase(line, pattern):
                self._deny(f"commands.deny: {_quote(pattern)}", f"the command {_quote(line)} matches it")
        if rules.allow is None:
            return
        allowed = f"commands.allow: {_quote(rules.allow)}"
        if not any(fnmatch.fnmatchcase(line, pattern) for pattern in rules.allow):
            self._deny(allowed, f"the command {_quote(line)} matches none of these patterns")
        operator = next((op for op in SHELL_OPERATORS if op in line), None) if shell else None
        if operator is not None:
            self._deny(allowed, f"the command {_quote(line)} contains {_quote(operator)}, which can run or feed "
                       "other commands than the allowed one; give the command as a list of arguments instead")

    def _checked_cwd(self, cwd: str | None, roots: list[str]) -> str:
        real = os.path.realpath(os.path.expanduser(cwd) if cwd else os.getcwd())
        if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
            given = "the default working directory" if cwd is None else f"cwd {_quote(cwd)}"
            self._deny(f"cwd_roots: {_quote(self.rules.cwd_roots)}",
                       f"{given} resolves to {_quote(real)}, which is not inside "
                       f"{' or '.join(_quote(root) for root in roots)}; pass a cwd inside one of them")
        return real

    def _check_env(self, env: Any) -> None:
        allowed = self.rules.env_names
        if allowed is None or not env:
            return
        names = [item.split("=", 1)[0] for item in env] if isinstance(env, list) else list(env)
        refused = [name for name in names if name not in allowed]
        if refused:
            self._deny(f"env_names: {_quote(allowed)}",
                       f"setting {', '.join(_quote(n) for n in refused)} is not allowed; leave it out of env")

    def _capped(self, rule: str, what: str, value: float | None, cap: float, unit: str) -> float:
        if value is None:
            return cap
        if value > cap:
            self._deny(f"{rule}: {cap:g}", f"{what} {value:g}{unit} is more than that; ask for at most "
                       f"{cap:g} (leaving it out applies {cap:g})")
        return value

    def _attempts_timeout(self, args: Mapping[str, Any], cap: float) -> float:
        """The timeout of each attempt, such that all attempts and the waits between them stay within `cap`.

        `timeout` is per attempt: with `retries`, a job may run `retries + 1` times, so the cap bounds
        `timeout * (retries + 1) + retry_delay * retries`. A start without a timeout gets its share.
        """
        retries = args.get("retries") or 0
        if not retries:
            return self._capped("max_timeout_seconds", "timeout", args.get("timeout"), cap, " seconds")
        attempts, waits = retries + 1, retries * (args.get("retry_delay") or 0.0)
        rule = f"max_timeout_seconds: {cap:g}"
        timeout = args.get("timeout")
        if timeout is None:
            share = (cap - waits) / attempts
            if share <= 0:
                self._deny(rule, f"retries={retries} with retry_delay={args.get('retry_delay'):g} waits {waits:g} "
                           "seconds between attempts, which leaves no time to run; ask for fewer retries or a "
                           "shorter retry_delay")
            return share
        total = timeout * attempts + waits
        if total > cap:
            between = f" + {waits:g} seconds between them" if waits else ""
            self._deny(rule, f"timeout {timeout:g} seconds per attempt x {attempts} attempts (retries={retries})"
                       f"{between} is {total:g} seconds, more than that; keep timeout x (retries + 1) + "
                       f"retry_delay x retries within {cap:g} (leaving timeout out gives each attempt its share)")
        return float(timeout)

    def _check_budget(self, budget: Mapping[str, Any] | None, cap: BudgetCap) -> dict[str, Any]:
        asked = dict(budget or {})
        for key, limit in cap.model_dump(exclude_none=True).items():
            asked[key] = self._capped(f"max_budget.{key}", key, asked.get(key), limit, "")
        return asked


def command_line(tool: str, args: Mapping[str, Any]) -> str:
    """The text the `commands` patterns match: a list argv joined with spaces.

    A coordination run is matched as `RUNNER --automation --config CONFIG QUESTION`, RUNNER as the
    call gives it (default: $MGSUP_RUNNER, else mgcoord).
    """
    if tool == "start_shell":
        command = args["command"]
        return command if isinstance(command, str) else " ".join(command)
    runner = args.get("runner") or os.environ.get("MGSUP_RUNNER") or "mgcoord"
    program = runner if isinstance(runner, str) else " ".join(runner)
    return " ".join((program, "--automation", "--config", str(args["config"]), str(args["question"])))


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """The policy in the YAML file `path`; PolicyError (one line: the file, where, what) when it is unusable."""
    source = f"policy {os.fspath(path)}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise PolicyError(source, f"cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(source, "not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise PolicyError(source, f"invalid YAML: {where}{getattr(exc, 'problem', None) or exc}") from None
    return Policy.from_mapping(data, source=source, base=Path(path).expanduser().absolute().parent)


def _quote(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
