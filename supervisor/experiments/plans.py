"""Plans: the experiments a batch, an A/B test or a sweep makes, with the sweep's config variants.

Making a plan writes nothing: a sweep's variants travel in their experiments (`config_text`) and the
runner writes them into the results folder once it holds that folder.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidRequest

CONFIGS_DIR = "configs"


@dataclass(frozen=True)
class Experiment:
    """One run to make: `config` (an absolute path) on `question`; `label` groups runs of one config.

    A sweep's experiment also carries the values it sets (`params`, dotted key -> value) and the
    variant's YAML (`config_text`), which the runner writes to `config` before anything starts.
    """

    experiment_id: str
    label: str
    config: str
    question: str
    params: dict[str, Any] = field(default_factory=dict)
    config_text: str | None = None


def batch_plan(pairs: Iterable[tuple[str | os.PathLike[str], str]], *, repeat: int = 1) -> list[Experiment]:
    """Experiments for (config, question) pairs, each `repeat` times; labelled by the config's file name.

    >>> [e.experiment_id for e in batch_plan([("configs/demo.yaml", "What is 2 + 2?")], repeat=2)]
    ['e001', 'e002']
    """
    _check_repeat(repeat)
    runs = [(_config_path(config), question) for config, question in pairs for _ in range(repeat)]
    return [Experiment(f"e{i:03d}", Path(config).stem, config, _question(question))
            for i, (config, question) in enumerate(runs, 1)]


def ab_plan(config_a: str | os.PathLike[str], config_b: str | os.PathLike[str], questions: Sequence[str], *,
            repeat: int = 1) -> list[Experiment]:
    """Both configs (labels `A` and `B`) on every question, `repeat` times, interleaved A, B, A, B.

    >>> [e.experiment_id for e in ab_plan("a.yaml", "b.yaml", ["q1"])]
    ['q01-r1-A', 'q01-r1-B']
    """
    _check_repeat(repeat)
    configs = {"A": _config_path(config_a), "B": _config_path(config_b)}
    return [Experiment(f"q{qi:02d}-r{r}-{label}", label, config, _question(question))
            for qi, question in enumerate(_nonempty(questions), 1) for r in range(1, repeat + 1)
            for label, config in configs.items()]


def sweep_plan(base_config: str | os.PathLike[str], overrides: Sequence[str], questions: Sequence[str],
               out_dir: str | os.PathLike[str], *, repeat: int = 1) -> list[Experiment]:
    """One config variant per combination of `overrides` (`dotted.key=v1,v2`), each on every question.

    Variant N is `<out_dir>/configs/vNN.yaml`, written by `run_experiments` (nothing is written
    here); `${config_dir}` in the base config keeps meaning the base config's folder. Values are
    read as YAML (`2` is a number, `a b` a string).

    >>> plan = sweep_plan("configs/demo.yaml", ["orchestrator.max_new_answers_per_agent=1,2"],
    ...                   ["What is 17 * 23?"], "results/sweep")
    >>> sorted({e.label for e in plan})
    ['max_new_answers_per_agent=1', 'max_new_answers_per_agent=2']
    >>> plan[0].params
    {'orchestrator.max_new_answers_per_agent': 1}
    """
    _check_repeat(repeat)
    base_path = Path(_config_path(base_config))
    axes = [parse_override(text) for text in overrides]
    if not axes:
        raise InvalidRequest("no overrides given: use at least one KEY=V1,V2 to sweep over")
    keys = [key for key, _ in axes]
    if len(set(keys)) < len(keys):
        raise InvalidRequest(f"an override key is given twice: {keys}; give each key once, with all its values")
    base = _load_yaml(base_path)
    questions = _nonempty(questions)
    folder = Path(out_dir).expanduser().absolute() / CONFIGS_DIR
    plan = []
    for vi, values in enumerate(itertools.product(*(vals for _, vals in axes)), 1):
        params = dict(zip(keys, values, strict=True))
        document = _substitute(base, "${config_dir}", str(base_path.parent))
        for key, value in params.items():
            set_dotted(document, key, value)
        label = " ".join(f"{key.rsplit('.', 1)[-1]}={_show(value)}" for key, value in params.items())
        text = f"# {label}\n# from {base_path}\n" + yaml.safe_dump(document, sort_keys=False)
        plan += [Experiment(f"v{vi:02d}-q{qi:02d}-r{r}", label, str(folder / f"v{vi:02d}.yaml"), question,
                            params=params, config_text=text)
                 for qi, question in enumerate(questions, 1) for r in range(1, repeat + 1)]
    return plan


def parse_override(text: str) -> tuple[str, list[Any]]:
    """`orchestrator.max_new_answers_per_agent=1,2` -> ('orchestrator.max_new_answers_per_agent', [1, 2])."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[\w-]+(\.[\w-]+)*", key) or not raw.strip():
        raise InvalidRequest(f"invalid override {text!r}: write DOTTED.KEY=V1,V2 (e.g. "
                             "orchestrator.max_new_answers_per_agent=1,2)")
    return key, [yaml.safe_load(part.strip()) for part in raw.split(",")]


def set_dotted(document: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.0.c` in nested mappings and lists (numbers index lists); missing mappings are created."""
    node: Any = document
    parts = key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the top level"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise InvalidRequest(f"override {key!r}: {where} is a list of {len(node)}; {part!r} is not an index")
            index: int | str = int(part)
        elif isinstance(node, dict):
            index = part
            if not last and index not in node:
                node[index] = {}
        else:
            raise InvalidRequest(f"override {key!r}: {where} is {type(node).__name__}, not a mapping or list")
        if last:
            node[index] = value
        else:
            node = node[index]


def _config_path(config: str | os.PathLike[str]) -> str:
    path = Path(config).expanduser().resolve()
    if not path.is_file():
        raise InvalidRequest(f"config file not found: {str(config)!r}")
    return str(path)


def _question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidRequest("a question is empty: give every experiment the question the agents should answer")
    return question


def _nonempty(questions: Sequence[str]) -> list[str]:
    if isinstance(questions, str) or not questions:
        raise InvalidRequest("no questions given: pass at least one question")
    return [_question(q) for q in questions]


def _check_repeat(repeat: int) -> None:
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise InvalidRequest(f"repeat must be a whole number >= 1, got {repeat!r}")


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"cannot read config {str(path)!r}: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequest(f"config {str(path)!r} is not a YAML mapping")
    return document


def _substitute(value: Any, placeholder: str, replacement: str) -> Any:
    if isinstance(value, str):
        return value.replace(placeholder, replacement)
    if isinstance(value, list):
        return [_substitute(v, placeholder, replacement) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, placeholder, replacement) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
