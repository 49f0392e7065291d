"""Coordination configs: loading, ``${...}`` substitution and validation with located errors.

Example::

    report = load_config(Path("configs/demo.yaml"), run_cwd=Path.cwd())
    if not report.valid:
        for issue in report.errors:
            print(f"{issue.location}: {issue.message}")
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .limits import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_BYTES_LIMIT,
    MAX_CONFIG_DEPTH,
    MAX_CONFIG_VALUES,
    MIN_BYTES_LIMIT,
    quote,
)

AGENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BACKEND_TYPES = ("command", "openai")
DEFAULT_MAX_TOOL_ROUNDS = 10


def _relative_path(value: str | None) -> str | None:
    """Per-run folders are isolated below ``.massgen/workspaces``, so they must stay relative."""
    if value is None:
        return None
    path = PurePosixPath(value)
    if not value.strip():
        raise ValueError("must not be empty")
    if path.is_absolute():
        raise ValueError(f"must be a relative path (it is isolated under .massgen/workspaces), got {value!r}")
    if ".." in path.parts:
        raise ValueError(f"must not contain '..', got {value!r}")
    return value


class _BackendBase(BaseModel):
    # Backends carry provider-specific options; unknown keys are reported as warnings.
    model_config = ConfigDict(extra="allow")

    cwd: str | None = None

    _check_cwd = field_validator("cwd")(_relative_path)


class CommandBackendConfig(_BackendBase):
    """Any program as an agent, speaking the JSON stdin/stdout protocol of DESIGN §6.

    ``max_output_bytes`` bounds each of stdout and stderr of one turn.
    """

    type: Literal["command"]
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    max_output_bytes: int = Field(
        default=DEFAULT_MAX_OUTPUT_BYTES, ge=MIN_BYTES_LIMIT, le=MAX_BYTES_LIMIT, strict=True
    )

    @field_validator("command")
    @classmethod
    def _non_empty_program(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("the program (first element) must not be empty")
        return value


def _supervisor_tool_names() -> tuple[str, ...]:
    # Imported on use: only configs that ask for the supervisor tools pay for loading the supervisor.
    from supervisor.tools import TOOLS

    return tuple(spec.name for spec in TOOLS)


def _known_supervisor_tool(name: str) -> str:
    names = _supervisor_tool_names()
    if name not in names:
        raise ValueError(f"unknown supervisor tool {name!r}; the tools are: {', '.join(names)}")
    return name


class OpenAIBackendConfig(_BackendBase):
    """Any OpenAI-compatible chat-completions endpoint.

    ``supervisor_tools`` offers the model the supervisor's agent tools beside ``new_answer`` and
    ``vote``: ``true`` for all of them, or a list of names such as ``[start_coordination, wait_shell]``.
    ``supervisor_policy`` restricts what those calls may do: the path of a policy file (relative to
    the config's folder), or the policy itself as a mapping, whose relative ``cwd_roots`` are taken
    from the agent's workspace (docs/guardrails.md).
    ``max_tool_rounds`` bounds the model calls of one turn, so a model that keeps calling tools ends
    the turn with an error instead of looping. ``max_response_bytes`` bounds one response body.
    """

    type: Literal["openai"]
    model: str = Field(min_length=1)
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = Field(default="OPENAI_API_KEY", min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    supervisor_tools: list[Annotated[str, AfterValidator(_known_supervisor_tool)]] | None = None
    supervisor_policy: str | dict[str, Any] | None = None
    max_tool_rounds: int = Field(default=DEFAULT_MAX_TOOL_ROUNDS, ge=1)
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES, ge=MIN_BYTES_LIMIT, le=MAX_BYTES_LIMIT, strict=True
    )

    @field_validator("supervisor_tools", mode="before")
    @classmethod
    def _all_or_named(cls, value: Any) -> Any:
        if value is True:
            return list(_supervisor_tool_names())
        if value is False or value is None:
            return None
        if not isinstance(value, list):
            raise ValueError(f"expected true, false or a list of tool names, got {value!r}")
        return value

    @field_validator("supervisor_tools")
    @classmethod
    def _no_duplicates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise ValueError(f"tool listed more than once: {', '.join(twice)}")
        return value


BackendConfig = Annotated[CommandBackendConfig | OpenAIBackendConfig, Field(discriminator="type")]


class AgentConfig(BaseModel):
    """One agent: its id, optional system message and backend."""

    model_config = ConfigDict(extra="forbid")

    id: str
    system_message: str | None = None
    backend: BackendConfig

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not AGENT_ID_PATTERN.match(value):
            raise ValueError(
                f"invalid agent id {quote(value)}: use up to 64 letters, digits, '_', '.', '-' (it names folders)"
            )
        return value


class OrchestratorConfig(BaseModel):
    """Coordination bounds and the per-run folders that are isolated per instance."""

    model_config = ConfigDict(extra="forbid")

    max_new_answers_per_agent: int = Field(default=3, ge=1)
    max_turn_retries: int = Field(default=2, ge=0)
    snapshot_storage: str | None = None
    agent_temporary_workspace: str | None = None

    _check_paths = field_validator("snapshot_storage", "agent_temporary_workspace")(_relative_path)


class TimeoutSettings(BaseModel):
    """Time limits in seconds."""

    model_config = ConfigDict(extra="forbid")

    orchestrator_timeout_seconds: float = Field(default=1800, gt=0)
    agent_timeout_seconds: float = Field(default=180, gt=0)


class CoordinationConfig(BaseModel):
    """A validated coordination config (strings already substituted)."""

    # Other tools keep their own top-level sections in the same file; they are ignored with a warning.
    model_config = ConfigDict(extra="allow")

    agents: list[AgentConfig] = Field(min_length=1)
    orchestrator: OrchestratorConfig = Field(default_factory=OrchestratorConfig)
    timeout_settings: TimeoutSettings = Field(default_factory=TimeoutSettings)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem (or warning) in a config, located like ``agents[1].backend.type``."""

    location: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"location": self.location, "message": self.message}


@dataclass
class ValidationReport:
    """The outcome of loading a config: the model when valid, every issue otherwise."""

    path: Path
    raw: Any = None
    config: CoordinationConfig | None = None
    errors: list[ConfigIssue] = field(default_factory=list)
    warnings: list[ConfigIssue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.config is not None and not self.errors

    def as_dict(self) -> dict[str, Any]:
        """The ``mgcoord --validate --json`` document."""
        return {
            "valid": self.valid,
            "errors": [issue.as_dict() for issue in self.errors],
            "warnings": [issue.as_dict() for issue in self.warnings],
        }


def format_location(loc: tuple[int | str, ...]) -> str:
    """``("agents", 1, "backend", "type")`` → ``"agents[1].backend.type"``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(root)"


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """Replace ``${name}`` in every string of a loaded YAML tree; unknown names stay as written."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    return value


def config_variables(config_path: Path, run_cwd: Path) -> dict[str, str]:
    """``${config_dir}`` and ``${cwd}``, plus ``${python}`` (the interpreter running us) and
    ``${agents}`` (the folder of the demo agents shipped with the package), so a copied config
    still finds them."""
    return {
        "config_dir": str(config_path.resolve().parent),
        "cwd": str(run_cwd.resolve()),
        "python": sys.executable,
        "agents": str(Path(__file__).resolve().parent / "agents"),
    }


def load_config(path: Path, *, run_cwd: Path) -> ValidationReport:
    """Read, substitute and validate a config file; never raises for a bad config."""
    report = ValidationReport(path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        report.errors.append(ConfigIssue("(file)", f"cannot read config {str(path)!r}: {exc.strerror or exc}"))
        return report
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start]
        report.errors.append(ConfigIssue(f"line {line}", f"config is not UTF-8 text (byte 0x{byte:02x})"))
        return report
    try:
        report.raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        report.errors.append(ConfigIssue(where, f"invalid YAML: {problem}"))
        return report
    except RecursionError:
        report.errors.append(ConfigIssue("(file)", "invalid YAML: nested too deeply"))
        return report
    too_big = _expansion_problem(report.raw)
    if too_big:
        report.errors.append(ConfigIssue("(file)", too_big))
        report.raw = None
        return report
    if not isinstance(report.raw, dict):
        kind = "empty" if report.raw is None else f"a {type(report.raw).__name__}"
        report.errors.append(ConfigIssue("(root)", f"config is {kind}; expected a mapping with an 'agents' list"))
        return report
    data = substitute(report.raw, config_variables(path, run_cwd))
    try:
        config = CoordinationConfig.model_validate(data)
    except ValidationError as exc:
        report.errors.extend(_issues_from(exc))
        return report
    report.errors.extend(_semantic_errors(config))
    report.errors.extend(_policy_errors(config, path.resolve().parent))
    report.warnings.extend(_warnings(config))
    if not report.errors:
        report.config = config
    return report


def _expansion_problem(tree: Any) -> str | None:
    """Why a loaded YAML tree is unusable once its aliases are expanded, or None.

    YAML aliases share one object however often they are used, so the tree PyYAML returns is
    small; but every walk of it (substitution, validation, the metadata file) visits each use.
    Nine levels of nine aliases make 387 million values ("billion laughs"), an alias inside
    its own anchor makes an endless one. Sizes are memoised per object, so this check is linear
    in what the file holds.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ValueError("a YAML alias is used inside the mapping or list it names (an endless config)")
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"the config is nested deeper than {MAX_CONFIG_DEPTH} levels")
        open_nodes.add(key)
        total = 1
        for child in (*node.keys(), *node.values()) if isinstance(node, dict) else node:
            total += size(child, depth + 1)
            if total > MAX_CONFIG_VALUES:
                raise ValueError(
                    f"the config expands to more than {MAX_CONFIG_VALUES:,} values (YAML aliases used too often?)"
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    try:
        size(tree, 0)
    except ValueError as exc:
        return str(exc)
    return None


def runtime_problems(config: CoordinationConfig, environ: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """Problems that depend on the environment of the run, such as a missing API key."""
    env = os.environ if environ is None else environ
    problems = []
    for index, agent in enumerate(config.agents):
        backend = agent.backend
        if isinstance(backend, OpenAIBackendConfig) and not env.get(backend.api_key_env):
            problems.append(
                ConfigIssue(
                    f"agents[{index}].backend.api_key_env",
                    f"environment variable {backend.api_key_env} is not set (API key for agent {agent.id!r})",
                )
            )
    return problems


def _issues_from(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors():
        loc = list(error["loc"])
        kind = error["type"]
        message = error["msg"]
        # A discriminated union puts the tag in the location (backend.command.cwd); users never wrote it.
        for i in range(len(loc) - 1):
            if loc[i] == "backend" and loc[i + 1] in BACKEND_TYPES:
                del loc[i + 1]
                break
        if kind == "union_tag_invalid":
            loc.append("type")
            tag = error.get("ctx", {}).get("tag")
            message = f"unknown backend type {tag!r}; expected one of: {', '.join(BACKEND_TYPES)}"
        elif kind == "union_tag_not_found":
            loc.append("type")
            message = f"backend type is required; one of: {', '.join(BACKEND_TYPES)}"
        elif kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "value_error":
            message = str(error.get("ctx", {}).get("error", message))
        issues.append(ConfigIssue(format_location(tuple(loc)), message))
    return issues


def _semantic_errors(config: CoordinationConfig) -> list[ConfigIssue]:
    errors = []
    seen: dict[str, int] = {}
    for index, agent in enumerate(config.agents):
        if agent.id in seen:
            errors.append(
                ConfigIssue(f"agents[{index}].id", f"duplicate agent id {agent.id!r} (also agents[{seen[agent.id]}])")
            )
        else:
            seen[agent.id] = index
    return errors


def _policy_errors(config: CoordinationConfig, config_dir: Path) -> list[ConfigIssue]:
    """Check each agent's ``supervisor_policy``; a file's path is made absolute (from the config's folder)."""
    errors = []
    for index, agent in enumerate(config.agents):
        backend = agent.backend
        if not isinstance(backend, OpenAIBackendConfig) or backend.supervisor_policy is None:
            continue
        # Imported on use, as the tool names are: only configs with a policy load the supervisor's tools.
        from supervisor.tools.policy import Policy, PolicyError, load_policy

        try:
            if isinstance(backend.supervisor_policy, str):
                backend.supervisor_policy = str(config_dir / Path(backend.supervisor_policy).expanduser())
                load_policy(backend.supervisor_policy)
            else:
                Policy.from_mapping(backend.supervisor_policy)
        except PolicyError as exc:
            where = f"agents[{index}].backend.supervisor_policy"
            errors.append(ConfigIssue(where, str(exc) if isinstance(backend.supervisor_policy, str) else exc.problem))
    return errors


def _warnings(config: CoordinationConfig) -> list[ConfigIssue]:
    warnings = [ConfigIssue(key, "unknown top-level key, ignored") for key in (config.model_extra or {})]
    for index, agent in enumerate(config.agents):
        backend = agent.backend
        for key in backend.model_extra or {}:
            warnings.append(ConfigIssue(f"agents[{index}].backend.{key}", f"not used by the {backend.type} backend"))
        if isinstance(backend, OpenAIBackendConfig) and backend.supervisor_policy and not backend.supervisor_tools:
            warnings.append(ConfigIssue(f"agents[{index}].backend.supervisor_policy",
                                        "not used: the agent has no supervisor_tools"))
        if isinstance(backend, CommandBackendConfig):
            program = backend.command[0]
            if shutil.which(program) is None and not Path(program).is_file():
                warnings.append(
                    ConfigIssue(f"agents[{index}].backend.command[0]", f"program {program!r} not found on PATH")
                )
    warnings.extend(runtime_problems(config))
    return warnings
