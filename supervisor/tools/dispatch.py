"""The agent tools for OpenAI function calling: tool schemas and a dispatcher for the model's tool calls.

>>> tools = openai_tools("chat")                 # pass as `tools=` to chat.completions.create
>>> dispatch("start_shell", '{"command": "make test"}')   # a tool call's name and arguments
'{"shell_id":"shell_1a2b3c4d","status":"running","pid":4242,"command":"make test","duration_seconds":0.0}'

`dispatch` always returns a JSON string for the tool message: the result object, or
`{"error": "..."}` with a message that tells the model what to do next. Every call is written to
the home's audit log; with `policy=` it is first decided by that policy (one `Policy` object is one
agent session: pass the same one for every call of an agent).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from ..core import Supervisor
from .guard import rejected
from .policy import Policy
from .registry import TOOLS, SupervisorFactory, ToolFailure, call, find, invalid_arguments
from .strict import plain_schema, strict_schema
from .views import as_text

log = logging.getLogger(__name__)


def openai_tools(api: Literal["chat", "responses"] = "chat", *, strict: bool = True,
                 names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The tools as OpenAI function definitions.

    `api="chat"` gives the chat-completions shape `{"type": "function", "function": {...}}`;
    `api="responses"` the Responses API shape `{"type": "function", "name": ..., ...}`.
    `strict=True` gives schemas valid under structured-outputs rules (optional arguments are
    nullable; null means the default). `names` picks a subset, in the order given.

    >>> [t["function"]["name"] for t in openai_tools(names=["wait_shell"])]
    ['wait_shell']
    """
    specs = TOOLS if names is None else tuple(_known(name) for name in names)
    tools = []
    for spec in specs:
        function = {"name": spec.name, "description": spec.description,
                    "parameters": strict_schema(spec.arguments) if strict else plain_schema(spec.arguments),
                    "strict": strict}
        tools.append({"type": "function", "function": function} if api == "chat" else {"type": "function",
                                                                                          **function})
    return tools


def dispatch(name: str, arguments: str | Mapping[str, Any] | None, *,
             supervisor: SupervisorFactory = Supervisor, policy: Policy | None = None) -> str:
    """Run the tool call `name(arguments)` and return its result, or a readable error, as a JSON string.

    `arguments` is the JSON text the model sent (or an already parsed object). Null values mean
    "use the default", as in strict mode. Never raises for anything the model sent; an unexpected
    failure is logged and reported as an internal error without its details. `policy` (see
    `supervisor.tools.policy`) decides the call first; a refused call is an error that quotes the rule.

    >>> json.loads(dispatch("list_shells", "{}"))["max_concurrent"]
    10
    >>> policy = load_policy("policy.yaml")        # read_only: true
    >>> dispatch("kill_shell", {"shell_id": "shell_1a2b3c4d"}, policy=policy)
    '{"error":"denied by the policy rule read_only: true (policy policy.yaml): kill_shell changes shells; ..."}'
    """
    try:
        try:
            spec = find(name)
            raw = _parse(arguments)
            try:
                args = spec.arguments.model_validate({key: value for key, value in raw.items() if value is not None})
            except ValidationError as exc:
                raise invalid_arguments(spec.name, exc) from None
        except ToolFailure as exc:
            rejected(name, arguments, supervisor, policy, surface="dispatch", error=str(exc))
            raise
        return as_text(call(spec, args, supervisor, policy, surface="dispatch"))
    except ToolFailure as exc:
        return as_text({"error": str(exc)})
    except Exception:
        log.exception("tool %r failed unexpectedly", name)
        return as_text({"error": f"internal error in {name}; the details are in the server's log. Check "
                                 "the state with list_shells or get_shell_status before retrying"})


def _known(name: str) -> Any:
    try:
        return find(name)
    except ToolFailure as exc:
        raise ValueError(str(exc)) from None


def _parse(arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ToolFailure(f"the arguments are not valid JSON ({exc.msg} at character {exc.pos}): send one "
                              "JSON object, e.g. {\"shell_id\": \"shell_1a2b3c4d\"}") from None
    if not isinstance(arguments, Mapping):
        raise ToolFailure(f"the arguments must be a JSON object, got {type(arguments).__name__}")
    return dict(arguments)

