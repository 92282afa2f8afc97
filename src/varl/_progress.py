"""The progress-bar protocol long-running varl loops accept (a ``tqdm`` bar satisfies it).

Only ``typing`` is imported, so any module — pure ones included — may use it.
"""

from __future__ import annotations

from typing import Protocol


class ProgressBar(Protocol):
    """The part of a ``tqdm`` bar varl uses: set the total, then advance it."""

    def reset(self, total: float | None = None) -> None:
        """Restarts the bar with a new total."""

    def update(self, n: float | None = 1) -> bool | None:
        """Advances the bar by ``n`` units."""
