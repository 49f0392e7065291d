"""The OpenAI function schemas: both API shapes, and strict schemas that obey the structured-outputs rules."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
from mcp import Client

from supervisor.tools import TOOLS, openai_tools
from supervisor.tools.mcp_server import build_server
from supervisor.tools.strict import STRICT_KEYWORDS, plain_schema, strict_schema

CALLS = json.loads((Path(__file__).parent / "data" / "tool_calls.json").read_text())
NAMES = [spec.name for spec in TOOLS]


def strict_violations(node: Any, path: str = "$") -> list[str]:
    """Where `node` breaks the strict-mode rules: keywords, required lists, additionalProperties, $ref siblings."""
    problems = []
    if isinstance(node, dict):
        for key in node:
            if key not in STRICT_KEYWORDS:
                problems.append(f"{path}: unsupported keyword {key!r}")
        if "properties" in node or node.get("type") == "object":
            if node.get("additionalProperties") is not False:
                problems.append(f"{path}: additionalProperties is not false")
            if node.get("required") != list(node.get("properties", {})):
                problems.append(f"{path}: not every property is required")
        if "$ref" in node and len(node) > 1:
            problems.append(f"{path}: $ref with siblings")
        nullable = isinstance(node.get("type"), list) and "null" in node["type"]
        if nullable and "enum" in node and None not in node["enum"]:
            problems.append(f"{path}: nullable enum without null")
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    problems += strict_violations(sub, f"{path}.{name}")
            elif key == "items":
                problems += strict_violations(value, f"{path}[]")
            elif key == "anyOf":
                for i, sub in enumerate(value):
                    problems += strict_violations(sub, f"{path}|{i}")
    return problems


def accepts_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind) or any(
        accepts_null(branch) for branch in schema.get("anyOf", ()))


def test_the_checker_catches_violations() -> None:
    bad = {"type": "object", "title": "X", "properties": {"a": {"type": "string", "default": "x", "minLength": 2}},
           "required": []}
    found = strict_violations(bad)
    assert any("'title'" in p for p in found) and any("'default'" in p for p in found)
    assert any("'minLength'" in p for p in found)
    assert any("additionalProperties" in p for p in found) and any("required" in p for p in found)


@pytest.mark.parametrize("name", NAMES)
def test_strict_schema_obeys_the_rules(name: str) -> None:
    spec = next(s for s in TOOLS if s.name == name)
    schema = strict_schema(spec.arguments)
    assert strict_violations(schema) == []
    jsonschema.Draft202012Validator.check_schema(schema)
    plain = spec.arguments.model_json_schema()
    assert list(schema["properties"]) == list(plain["properties"])
    for prop, sub in schema["properties"].items():
        # Optional arguments are nullable (null = the default); required ones are not.
        assert accepts_null(sub) == (prop not in plain.get("required", [])), prop


@pytest.mark.parametrize("name", NAMES)
def test_strict_schema_agrees_with_openai_helper(name: str) -> None:
    spec = next(s for s in TOOLS if s.name == name)
    theirs = openai.pydantic_function_tool(spec.arguments, name=spec.name, description=spec.description)
    ours = openai_tools("chat", names=[name])[0]
    assert ours["function"]["name"] == theirs["function"]["name"]
    assert ours["function"]["strict"] is theirs["function"]["strict"] is True
    their_params, our_params = theirs["function"]["parameters"], ours["function"]["parameters"]
    assert our_params["required"] == their_params["required"]
    assert our_params["additionalProperties"] is their_params["additionalProperties"] is False
    # Recorded strict-mode calls pass our schema, and the model once the nulls (defaults) are dropped.
    for call in CALLS["chat"] + CALLS["responses"]:
        function = call.get("function", call)
        if function["name"] != name:
            continue
        sent = json.loads(function["arguments"])
        jsonschema.validate(sent, our_params)
        spec.arguments.model_validate({k: v for k, v in sent.items() if v is not None})


def test_recorded_strict_payloads_match_the_strict_schemas() -> None:
    schemas = {t["name"]: t["parameters"] for t in openai_tools("responses")}
    for call in CALLS["chat"] + CALLS["responses"]:
        function = call.get("function", call)
        jsonschema.validate(json.loads(function["arguments"].replace("SHELL_ID", "shell_1a2b3c4d")),
                            schemas[function["name"]])


def test_chat_and_responses_shapes() -> None:
    chat = openai_tools("chat")
    responses = openai_tools("responses", strict=False)
    assert [t["function"]["name"] for t in chat] == NAMES == [t["name"] for t in responses]
    for tool in chat:
        assert set(tool) == {"type", "function"} and tool["type"] == "function"
        assert set(tool["function"]) == {"name", "description", "parameters", "strict"}
        assert len(tool["function"]["description"]) < 1024
    for tool in responses:
        assert set(tool) == {"type", "name", "description", "parameters", "strict"} and tool["strict"] is False
        assert without_titles(tool["parameters"]) == tool["parameters"]
    assert [t["function"]["name"] for t in openai_tools(names=["wait_shell", "kill_shell"])] == [
        "wait_shell", "kill_shell"]
    with pytest.raises(ValueError, match="unknown tool 'nope'"):
        openai_tools(names=["nope"])


def test_mcp_and_openai_share_one_definition() -> None:
    async def listed() -> dict[str, Any]:
        async with Client(build_server()) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    mcp_tools = asyncio.run(listed())
    for tool in openai_tools("responses", strict=False):
        listed_tool = mcp_tools[tool["name"]]
        assert listed_tool.description == tool["description"]
        assert without_titles(listed_tool.input_schema) == tool["parameters"]


def without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [without_titles(v) for v in node]
    return node


def test_plain_schema_keeps_defaults_and_constraints() -> None:
    spec = next(s for s in TOOLS if s.name == "wait_shell")
    schema = plain_schema(spec.arguments)
    assert schema["properties"]["timeout"] == {"default": 60.0, "description": schema["properties"]["timeout"][
        "description"], "maximum": 600.0, "minimum": 0.0, "type": "number"}
    assert schema["required"] == ["shell_id"] and schema["additionalProperties"] is False
