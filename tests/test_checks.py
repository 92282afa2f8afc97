"""The shared argument validators of varl._checks."""

from __future__ import annotations

import numpy as np
import pytest

from varl._checks import check_int, check_real


def test_check_int_accepts_python_and_numpy_ints() -> None:
    assert check_int(3, "n") == 3
    assert check_int(np.int64(5), "n", minimum=5) == 5
    assert type(check_int(np.int32(2), "n")) is int


@pytest.mark.parametrize("bad", [True, 2.0, "3", None, -1])
def test_check_int_rejects_non_ints_and_values_below_minimum(bad: object) -> None:
    with pytest.raises(ValueError, match=r"steps: expected an int >= 0"):
        check_int(bad, "steps")


def test_check_int_minimum_is_inclusive() -> None:
    assert check_int(1, "k", minimum=1) == 1
    with pytest.raises(ValueError, match=r"k: expected an int >= 1, got 0"):
        check_int(0, "k", minimum=1)


def test_check_real_bounds() -> None:
    assert check_real(-2.5, "target") == -2.5
    assert check_real(0, "decay", minimum=0) == 0.0
    assert check_real(np.float32(0.5), "lr", minimum=0, strict=True) == 0.5
    with pytest.raises(ValueError, match=r"lr: expected a finite float > 0, got 0"):
        check_real(0, "lr", minimum=0, strict=True)
    with pytest.raises(ValueError, match=r"decay: expected a finite float >= 0, got -0.1"):
        check_real(-0.1, "decay", minimum=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "1.0", None])
def test_check_real_rejects_non_finite_and_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match=r"scale: expected a finite float"):
        check_real(bad, "scale")
