"""Small typed records: classes whose annotated fields are checked when an instance is made.

The shapes of what is stored per shell and of what the API returns (`models.py`) are declared as
class annotations, as pydantic models are, and checked on every read. pydantic itself is not used
for that: importing it costs a command several times a bare interpreter start, and `mgsup list`
validates every record. What the records need is small: plain JSON types, optional fields,
literals, lists and mappings, and bounds (`Field`).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Self

Check = Callable[[Any], Any]
_MISSING = object()


class Field:
    """Bounds on a field, used inside `Annotated[...]`: `Annotated[int, Field(ge=1)]`."""

    def __init__(self, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
                 lt: float | None = None, allow_inf_nan: bool = True, min_length: int | None = None) -> None:
        self.ge, self.gt, self.le, self.lt = ge, gt, le, lt
        self.allow_inf_nan = allow_inf_nan
        self.min_length = min_length

    def check(self, value: Any) -> Any:
        if not self.allow_inf_nan and isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        if (self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt) or \
                (self.le is not None and value > self.le) or (self.lt is not None and value >= self.lt):
            raise ValueError(f"{value!r} is out of range")
        if self.min_length is not None and len(value) < self.min_length:
            raise ValueError(f"fewer than {self.min_length} items")
        return value


class RecordError(ValueError):
    """A record that does not fit its class: one message per field that is wrong."""

    def __init__(self, name: str, problems: list[str]) -> None:
        super().__init__(f"{name}: " + "; ".join(problems))
        self.problems = problems

    def error_count(self) -> int:
        return len(self.problems)


class Record:
    """A class of records: annotated fields, with defaults where they may be missing; unknown keys are ignored.

    >>> class Point(Record):
    ...     x: int
    ...     label: str | None = None
    >>> Point.model_validate({"x": 1, "extra": True}).model_dump()
    {'x': 1, 'label': None}
    """

    _checks: ClassVar[list[tuple[str, Check, Any]]]

    def __init__(self, **data: Any) -> None:
        values = self.__dict__
        problems = None
        for name, check, default in self._fields():
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if default is _MISSING:
                    problems = [*(problems or []), f"{name} is missing"]
                    continue
                value = _copy(default)
            try:
                values[name] = check(value)
            except (ValueError, TypeError) as exc:
                problems = [*(problems or []), f"{name}: {exc}"]
        if problems:
            raise RecordError(type(self).__name__, problems)

    @classmethod
    def model_validate(cls, data: object) -> Self:
        """The record of a mapping (as parsed from JSON); RecordError when it does not fit."""
        if not isinstance(data, dict):
            raise RecordError(cls.__name__, [f"not an object but {type(data).__name__}"])
        return cls(**data)

    @classmethod
    def model_construct(cls, **data: Any) -> Self:
        """A record of values known to fit (built by the library itself): not checked; defaults fill the rest."""
        record = cls.__new__(cls)
        values = record.__dict__
        for name, _, default in cls._fields():
            value = data.get(name, _MISSING)
            values[name] = _copy(default) if value is _MISSING else value
        return record

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Self:
        from .layout import loads

        return cls.model_validate(loads(text.decode() if isinstance(text, bytes) else text))

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        """The fields as a plain dict, in their declared order (`mode` is accepted as pydantic's is)."""
        values = self.__dict__
        return {name: values[name] if type(values[name]) not in _CONTAINERS else _copy(values[name])
                for name, _, _ in self._fields()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and type(other) is type(self) and self.model_dump() == other.model_dump()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.model_dump().items())})"

    @classmethod
    def _fields(cls) -> list[tuple[str, Check, Any]]:
        checks = cls.__dict__.get("_checks")
        if checks is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            checks = [(name, _checker(hint), getattr(cls, name, _MISSING)) for name, hint in hints.items()
                      if not name.startswith("_")]
            cls._checks = checks
        return checks


_CONTAINERS = (list, dict)


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_copy(item) for item in value]
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    return value


def _checker(hint: Any) -> Check:
    """The function that checks (and normalises) a value of the type `hint`; ValueError when it does not fit."""
    if hint is Any:
        return lambda value: value
    if hint is type(None):
        return _exactly(None)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        base = _checker(args[0])
        bounds = [extra for extra in args[1:] if isinstance(extra, Field)]

        def bounded(value: Any) -> Any:
            value = base(value)
            for bound in bounds:
                bound.check(value)
            return value

        return bounded
    if origin in (types.UnionType, typing.Union):
        if type(None) in args and len(args) == 2:
            other = _checker(next(arg for arg in args if arg is not type(None)))
            return lambda value: None if value is None else other(value)
        return _one_of([_checker(arg) for arg in args])
    if origin is typing.Literal:
        allowed = set(args)
        return lambda value: _literal(value, allowed)
    if origin is list:
        item = _checker(args[0])
        return lambda value: [item(v) for v in _of_type(value, list)]
    if origin is dict:
        key, item = _checker(args[0]), _checker(args[1])
        return lambda value: {key(k): item(v) for k, v in _of_type(value, dict).items()}
    return _SCALARS[hint]


def _one_of(checks: list[Check]) -> Check:
    def check(value: Any) -> Any:
        problems = []
        for one in checks:
            try:
                return one(value)
            except (ValueError, TypeError) as exc:
                problems.append(str(exc))
        raise ValueError(" or ".join(problems))

    return check


def _literal(value: Any, allowed: set[Any]) -> Any:
    if not isinstance(value, str | int) or isinstance(value, bool) or value not in allowed:
        raise ValueError(f"{value!r} is not one of {sorted(map(str, allowed))}")
    return value


def _exactly(expected: Any) -> Check:
    def check(value: Any) -> Any:
        if value is not expected:
            raise ValueError(f"{value!r} is not {expected!r}")
        return value

    return check


def _of_type(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise ValueError(f"{type(value).__name__} is not {kind.__name__}")
    return value


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    return str(_of_type(value, str))


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    # As pydantic's lax mode: a float without a fraction is a whole number; a boolean is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _float(value: Any) -> float:
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean")


_SCALARS: dict[Any, Check] = {str: _str, int: _int, float: _float, bool: _bool}
