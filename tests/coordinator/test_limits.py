"""The bounds on text from outside: clipping, quoting, lone surrogates, hostile JSON, token usage."""

from __future__ import annotations

import json

import pytest

from coordinator.backends.base import MAX_REPORTED_TOKENS, Usage, add_reported_usage
from coordinator.backends.replies import parse_json
from coordinator.errors import AgentError
from coordinator.limits import MAX_JSON_DEPTH, MAX_JSON_VALUES, MAX_MESSAGE_CHARS, clean_text, clip, quote

pytestmark = pytest.mark.timeout(10)


def test_clip_keeps_short_text_and_bounds_long_text() -> None:
    assert clip("short") == "short"
    long = "x" * (3 * 2**20)
    clipped = clip(long)
    assert len(clipped) == MAX_MESSAGE_CHARS
    assert clipped.endswith(f"... [cut: {len(long)} characters in all]")
    assert len(clip(long, 10)) == 10


def test_quote_never_builds_the_whole_repr() -> None:
    quoted = quote("a" * (3 * 2**20))
    assert len(quoted) < 120 and quoted.endswith("(3145728 characters)")
    assert quote("agent2") == "'agent2'"
    assert len(quote(list(range(10**5)))) <= 80


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("an emoji cut in half: \ud83d", "an emoji cut in half: \ufffd"),
        ("\ude00 alone", "\ufffd alone"),
        ("whole \ud83d\ude00 pair", "whole \U0001f600 pair"),
    ],
)
def test_clean_text_replaces_lone_surrogates(text: str, expected: str) -> None:
    cleaned = clean_text(text)
    assert cleaned == expected
    cleaned.encode("utf-8")


def test_parse_json_repairs_surrogates_everywhere() -> None:
    data = json.dumps({"content": "cut \ud83d", "\ud83d key": ["\udc00"]})  # escaped, as JSON allows
    assert parse_json(data, "reply") == {"content": "cut \ufffd", "\ufffd key": ["\ufffd"]}


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 50_000])
def test_parse_json_refuses_deep_nesting(depth: int) -> None:
    with pytest.raises(AgentError, match="nested too deeply"):
        parse_json("[" * depth + "]" * depth, "stdout")
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "stdout") is not None


def test_parse_json_refuses_a_million_tiny_values_before_building_them() -> None:
    dense = "[" + ",".join(["[]"] * (MAX_JSON_VALUES + 1)) + "]"
    with pytest.raises(AgentError, match="response holds more than 100,000 JSON values"):
        parse_json(dense, "response")
    # Commas, brackets and escaped quotes inside strings are text, not values.
    text = json.dumps({"content": ', [{"x": 1}], \\"' * MAX_JSON_VALUES, "list": list(range(1000))})
    assert len(parse_json(text, "response")["list"]) == 1000


def test_parse_json_errors_are_short() -> None:
    with pytest.raises(AgentError) as caught:
        parse_json(b"{" + b"x" * 2**20 + b"\xff", "response")
    assert str(caught.value).startswith("invalid JSON in response") and len(str(caught.value)) < 250


@pytest.mark.parametrize(
    "reported",
    [
        {"prompt_tokens": -15, "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": 3e30},
        {"prompt_tokens": 10, "completion_tokens": 3 * 10**30},
        {"prompt_tokens": True, "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": 5.5},
        {"prompt_tokens": "10", "completion_tokens": 5},
        {"completion_tokens": 5},
        [10, 5],
        "lots",
    ],
)
def test_nonsense_usage_is_ignored_and_logged(reported: object, caplog: pytest.LogCaptureFixture) -> None:
    before = Usage(1, 2, 3)
    assert add_reported_usage(before, reported) == Usage(1, 2, 3)
    assert add_reported_usage(None, reported) is None
    assert "ignored a usage report" in caplog.text


@pytest.mark.parametrize("total", [True, -1, 3, MAX_REPORTED_TOKENS + 1, None, "15"])
def test_a_bad_total_is_replaced_by_the_sum(total: object) -> None:
    usage = add_reported_usage(None, {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": total})
    assert usage == Usage(10, 5, 15)


def test_valid_usage_adds_up() -> None:
    usage = add_reported_usage(None, {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 20})
    usage = add_reported_usage(usage, {"prompt_tokens": MAX_REPORTED_TOKENS, "completion_tokens": 0})
    assert usage == Usage(10 + MAX_REPORTED_TOKENS, 5, 20 + MAX_REPORTED_TOKENS)
    assert add_reported_usage(usage, None) is usage
