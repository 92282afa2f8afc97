"""Input validation shared by every pure module: clear errors that name the argument.

Only numpy is imported here, so any core module may use these helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def as_float_array(
    value: Any, name: str, *, last_dim: int | None = None, finite: bool = False
) -> FloatArray:
    """Converts ``value`` to a float64 array, checking its trailing dimension and finiteness.

    Args:
        value: Array-like of real numbers.
        name: Argument name used in error messages.
        last_dim: Required size of the last axis (e.g. 4 for boxes), or None for any shape.
        finite: When True, NaN or inf anywhere is a ``ValueError``.

    Returns:
        The values as a float64 ndarray (a copy only when a conversion was needed).

    Raises:
        TypeError: If ``value`` is not numeric (strings, objects, complex numbers).
        ValueError: If the last axis has the wrong size or a non-finite value is present while
            ``finite`` is set.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{name}: expected a rectangular array of numbers ({exc})") from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name}: expected real numbers, got an array of dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if last_dim is not None and (arr.ndim == 0 or arr.shape[-1] != last_dim):
        raise ValueError(f"{name}: expected shape [..., {last_dim}], got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def check_positive(value: float, name: str) -> float:
    """Returns ``value`` as a float if it is finite and > 0, else raises ``ValueError``."""
    x = float(value)
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return x


def check_nonnegative(value: float, name: str) -> float:
    """Returns ``value`` as a float if it is finite and >= 0, else raises ``ValueError``."""
    x = float(value)
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return x


def check_unit_interval(value: float, name: str) -> float:
    """Returns ``value`` as a float if it lies in [0, 1], else raises ``ValueError``."""
    x = float(value)
    if not (0.0 <= x <= 1.0):
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return x


def check_fraction(value: float, name: str) -> float:
    """Returns ``value`` as a float if it lies in (0, 1] (an IoU threshold, a share), else raises
    ``ValueError``."""
    x = float(value)
    if not (0.0 < x <= 1.0):
        raise ValueError(f"{name}: expected a number in (0, 1], got {value!r}")
    return x
