"""What a cluster address is: the URL of a Ray head's dashboard, as `ray job submit --address` takes it."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..errors import InvalidRequest

ENV_VAR = "MGSUP_CLUSTER"


def default_cluster() -> str | None:
    """The cluster chosen by the environment ($MGSUP_CLUSTER), or None for local shells."""
    raw = os.environ.get(ENV_VAR, "").strip()
    return normalize(raw, what=f"${ENV_VAR}") if raw else None


def normalize(address: object, *, what: str = "cluster") -> str:
    """`address` as a dashboard URL: `host:port` gets `http://`; only http and https are accepted.

    Ray reads an address without a scheme as the address of its internal store and waits 40 s
    before it fails, and `ray://` is its client protocol, not the Job API: both are refused here.

    >>> normalize("127.0.0.1:8265")
    'http://127.0.0.1:8265'
    """
    if not isinstance(address, str) or not address.strip():
        raise InvalidRequest(f"{what} must be the address of a Ray dashboard, such as http://127.0.0.1:8265")
    text = address.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise InvalidRequest(f"{what} {address!r} is not a valid address: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{what} {address!r} is not the address of a Ray dashboard: give its http(s) URL, "
                             "such as http://127.0.0.1:8265 (what `ray job submit --address` takes)")
    if parts.path or parts.query or parts.fragment:
        raise InvalidRequest(f"{what} {address!r} has a path; give the dashboard's bare URL, such as "
                             "http://127.0.0.1:8265")
    return text


def host_port(address: str) -> tuple[str, int]:
    """The host and TCP port of a normalized address."""
    parts = urlsplit(address)
    assert parts.hostname is not None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
