"""JSON schemas of tool arguments as OpenAI function calling wants them, plain and strict.

Strict mode (structured outputs) accepts a subset of JSON Schema: every object lists all its
properties as required and sets `additionalProperties: false`; an optional value is expressed by
allowing null (`"type": ["integer", "null"]`); a few keywords (titles, defaults, string lengths...)
are not accepted. The dispatcher still validates with the full pydantic model, so constraints the
strict schema drops are enforced anyway, and a null stands for the argument's default.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

STRICT_KEYWORDS = frozenset({
    "type", "description", "properties", "required", "additionalProperties", "items", "anyOf", "enum", "const",
    "$defs", "$ref", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minItems", "maxItems",
})


def plain_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema without pydantic's titles, for non-strict function calling.

    >>> plain_schema(WaitShellArgs)["required"]
    ['shell_id']
    """
    schema: dict[str, Any] = _drop_titles(model.model_json_schema())
    return schema


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema made valid for OpenAI strict mode (see the module docstring).

    >>> strict_schema(WaitShellArgs)["properties"]["timeout"]["type"]
    ['number', 'null']
    """
    return _strict(copy.deepcopy(model.model_json_schema()), nullable=False)


def _drop_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _drop_titles(value) for key, value in node.items()
                if not (key == "title" and isinstance(value, str))}
    if isinstance(node, list):
        return [_drop_titles(item) for item in node]
    return node


def _strict(node: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    properties = node.get("properties")
    result: dict[str, Any] = {key: value for key, value in node.items() if key in STRICT_KEYWORDS}
    if isinstance(properties, dict):
        required = set(node.get("required", ()))
        result["properties"] = {name: _strict(sub, nullable=name not in required) for name, sub in properties.items()}
        result["required"] = list(properties)
        result["additionalProperties"] = False
    if "$defs" in node:
        result["$defs"] = {name: _strict(sub, nullable=False) for name, sub in node["$defs"].items()}
    if isinstance(node.get("items"), dict):
        result["items"] = _strict(node["items"], nullable=False)
    if "anyOf" in node:
        result["anyOf"] = [_strict(sub, nullable=False) for sub in node["anyOf"]]
        result = _collapse_null_branch(result)
    return _allow_null(result) if nullable else result


def _is_null(node: dict[str, Any]) -> bool:
    return node.get("type") == "null" and len(node) == 1


def _collapse_null_branch(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [{type: T, ...}, {type: null}]` becomes `{type: [T, null], ...}`, the form strict mode documents."""
    branches = node["anyOf"]
    others = [b for b in branches if not _is_null(b)]
    if len(others) != 1 or len(branches) != 2 or not isinstance(others[0].get("type"), str):
        return node
    merged = {key: value for key, value in node.items() if key != "anyOf"} | others[0]
    return _allow_null(merged)


def _allow_null(node: dict[str, Any]) -> dict[str, Any]:
    kind = node.get("type")
    if isinstance(kind, str):
        node = node | {"type": [kind, "null"] if kind != "null" else kind}
    elif isinstance(kind, list):
        node = node | {"type": kind if "null" in kind else [*kind, "null"]}
    elif "anyOf" in node:
        if not any(_is_null(b) for b in node["anyOf"]):
            node = node | {"anyOf": [*node["anyOf"], {"type": "null"}]}
        return node
    else:
        return {"anyOf": [node, {"type": "null"}]}
    if "enum" in node and None not in node["enum"]:
        node = node | {"enum": [*node["enum"], None]}
    return node
