"""Two-sample tests for A/B verdicts, exact where it is cheap, with the standard library only.

- `fisher_exact`: are two success rates different? (Fisher's exact test on the 2x2 table, two-sided.)
- `mann_whitney_u`: does one sample tend to be larger? (Mann-Whitney U test, two-sided; the exact
  null distribution, ties included, for samples of up to EXACT_LIMIT values in all, else the normal
  approximation with tie and continuity corrections.)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_LIMIT = 60
# Probabilities equal up to rounding count as "as extreme" (the usual tolerance of exact tests).
_RELATIVE_TOLERANCE = 1e-7


@dataclass(frozen=True)
class Significance:
    """A test's name (with its variant), statistic and two-sided p-value."""

    name: str
    statistic: float
    p_value: float


def fisher_exact(successes_a: int, runs_a: int, successes_b: int, runs_b: int) -> Significance:
    """Fisher's exact test: the probability of a split of successes at least as uneven as this one.

    >>> round(fisher_exact(6, 6, 0, 6).p_value, 4)
    0.0022
    >>> fisher_exact(3, 3, 3, 3).p_value
    1.0
    """
    if not (0 <= successes_a <= runs_a and 0 <= successes_b <= runs_b):
        raise ValueError("successes must lie between 0 and the number of runs")
    total = successes_a + successes_b
    low, high = max(0, total - runs_b), min(runs_a, total)
    # Every table with these margins, weighted by its number of arrangements (exact integers).
    weights = {k: math.comb(runs_a, k) * math.comb(runs_b, total - k) for k in range(low, high + 1)}
    observed = weights[successes_a]
    extreme = sum(w for w in weights.values() if w <= observed * (1 + _RELATIVE_TOLERANCE))
    return Significance("Fisher's exact test, two-sided", successes_a / max(runs_a, 1) - successes_b / max(runs_b, 1),
                      min(1.0, extreme / sum(weights.values())))


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> Significance:
    """The Mann-Whitney U test of `a` against `b`; the statistic is U of `a`.

    >>> result = mann_whitney_u([1.0, 1.1, 1.2, 1.3], [2.0, 2.1, 2.2, 2.3])
    >>> result.statistic, round(result.p_value, 4)
    (0.0, 0.0286)
    """
    n_a, n_b = len(a), len(b)
    if n_a == 0 or n_b == 0:
        raise ValueError("both samples need at least one value")
    doubled = _doubled_ranks([*a, *b])
    # Ranks times two are whole numbers even with ties (midranks end in .5).
    rank_sum = sum(doubled[:n_a])
    u_doubled = rank_sum - n_a * (n_a + 1)
    centre = n_a * n_b
    if n_a + n_b <= EXACT_LIMIT:
        counts = _rank_sum_counts(doubled, n_a)
        distance = abs(u_doubled - centre)
        extreme = sum(c for s, c in counts.items() if abs(s - n_a * (n_a + 1) - centre) >= distance)
        p_value = extreme / math.comb(n_a + n_b, n_a)
        name = "Mann-Whitney U test, two-sided, exact"
    else:
        n = n_a + n_b
        ties = sum(t ** 3 - t for t in Counter(doubled).values())
        variance = n_a * n_b / 12 * ((n + 1) - ties / (n * (n - 1)))
        z = max(0.0, abs(u_doubled - centre) / 2 - 0.5) / math.sqrt(variance) if variance > 0 else 0.0
        p_value = math.erfc(z / math.sqrt(2))
        name = "Mann-Whitney U test, two-sided, normal approximation"
    return Significance(name, u_doubled / 2, min(1.0, p_value))


def _doubled_ranks(values: Sequence[float]) -> list[int]:
    """Twice the rank of each value (1-based; tied values share the mean of their ranks)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            ranks[i] = start + end + 2
        start = end + 1
    return ranks


def _rank_sum_counts(doubled: Sequence[int], k: int) -> Counter[int]:
    """How many ways `k` of the values can be picked, by the sum of their (doubled) ranks."""
    ways: list[Counter[int]] = [Counter({0: 1})] + [Counter() for _ in range(k)]
    for rank in doubled:
        for picked in range(k, 0, -1):
            for total, count in ways[picked - 1].items():
                ways[picked][total + rank] += count
    return ways[k]
