"""What an experiment returns: numbers, curves to plot, and a verdict on the paper's claim.

The report writer (``report.py``) renders these objects and knows nothing about any method.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from varl._progress import ProgressBar

__all__ = ["ExperimentResult", "Panel", "ProgressBar", "Series"]


@dataclass(frozen=True, kw_only=True)
class Series:
    """One curve: the mean over seeds, with the seed minimum and maximum as a band.

    Attributes:
        label: Legend entry (usually the method or baseline name).
        x: Abscissa values, e.g. training steps.
        mean: Mean over seeds at each ``x``.
        low: Minimum over seeds at each ``x`` (same length as ``x``).
        high: Maximum over seeds at each ``x``.
    """

    label: str
    x: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]

    def __post_init__(self) -> None:
        n = len(self.x)
        for name in ("mean", "low", "high"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Series {self.label!r}: {name} has a different length than x")


@dataclass(frozen=True, kw_only=True)
class Panel:
    """One subplot of an experiment's figure.

    Attributes:
        title: Subplot title.
        xlabel: Label of the x axis.
        ylabel: Label of the y axis.
        series: The curves drawn in this subplot.
    """

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]


@dataclass(frozen=True, kw_only=True)
class ExperimentResult:
    """The outcome of one reproduced claim.

    Attributes:
        name: Experiment name as used by ``varl reproduce NAME``.
        paper: Paper title and arXiv id.
        claim: The paper's central claim, as tested here, in one sentence.
        verdict: True when the claim's direction held in this run.
        verdict_text: One line saying what was compared and how it came out.
        metrics: Flat mapping of every headline number (final values per arm, per seed).
        table: Rows of the summary table (first row is the header).
        panels: Curves to plot.
        settings: The configuration the experiment ran with.
        seeds: The seeds used.
        seconds: Wall-clock time of the run.
    """

    name: str
    paper: str
    claim: str
    verdict: bool
    verdict_text: str
    metrics: dict[str, float]
    table: list[list[str]]
    panels: list[Panel]
    settings: dict[str, Any]
    seeds: list[int]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-serialisable copy of the result."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentResult:
        """Rebuilds a result from :meth:`to_dict` output (e.g. a saved run being resumed)."""
        panels = [
            Panel(**{**p, "series": [Series(**s) for s in p["series"]]}) for p in data["panels"]
        ]
        return cls(**{**data, "panels": panels})
