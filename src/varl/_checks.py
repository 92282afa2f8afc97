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


def check_int(value: object, name: str, *, minimum: int = 0) -> int:
    """Returns ``value`` as an int if it is an integer (a Python or NumPy int, not a bool) >=
    ``minimum``, else raises ``ValueError``. For settings such as step counts and seeds."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_real(
    value: object, name: str, *, minimum: float | None = None, strict: bool = False
) -> float:
    """Returns ``value`` as a float if it is a finite real number (not a bool) and, when
    ``minimum`` is given, >= ``minimum`` (> with ``strict``); else raises ``ValueError``.

    Unlike :func:`check_positive` it rejects strings and bools rather than converting them, as
    configuration fields should.
    """
    real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    x = float(value) if real else float("nan")  # type: ignore[arg-type]
    ok = bool(np.isfinite(x))
    if ok and minimum is not None:
        ok = x > minimum if strict else x >= minimum
    if not ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name}: expected a finite float{bound}, got {value!r}")
    return x


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


def as_probability_vector(
    value: Any, name: str, *, size: int | None = None, atol: float = 1e-6
) -> FloatArray:
    """Converts ``value`` to a 1-D probability vector (a point of the simplex).

    Entries may fall below 0 or the sum may miss 1 by at most ``atol`` (rounding in a caller's
    arithmetic); such a vector is clipped at 0 and renormalised, anything further off is an
    error.

    Args:
        value: Array-like of shape ``[n]``.
        name: Argument name used in error messages.
        size: Required length ``n``, or None for any length >= 1.
        atol: Tolerance on negative entries and on the distance of the sum from 1.

    Returns:
        A float64 array ``[n]`` with entries >= 0 summing to 1.

    Raises:
        TypeError: If ``value`` is not numeric.
        ValueError: If it is not 1-D, has the wrong length, holds NaN/inf, or is off the
            simplex by more than ``atol``.
    """
    arr = as_float_array(value, name, finite=True)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D probability vector, got {arr.shape}")
    if size is not None and arr.size != size:
        raise ValueError(f"{name}: expected {size} probabilities, got {arr.size}")
    total = float(arr.sum())
    if arr.min() < -atol or abs(total - 1.0) > atol:
        raise ValueError(
            f"{name}: expected probabilities >= 0 summing to 1, got min {arr.min():.3g} "
            f"and sum {total:.6g}"
        )
    clipped: FloatArray = np.clip(arr, 0.0, None)
    clipped /= clipped.sum()
    return clipped
