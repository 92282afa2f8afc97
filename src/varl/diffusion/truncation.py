"""AlignProp's truncated backpropagation: which denoising steps keep parameter gradients.

Paper: Prabhudesai et al., "Aligning Text-to-Image Diffusion Models with Reward
Backpropagation" (AlignProp), arXiv 2310.03739; spec alignprop_ctrlu.md §1.2. Steps are indexed
i = 0..T−1 from noisiest to cleanest; a step that does not keep its gradient has its noise
prediction detached (the latent chain itself is never detached). Full backpropagation (K = T)
collapsed to one image per prompt in the paper; randomising the number K of final steps with
gradients (randomised truncated BPTT) avoided it, K ~ Uniform(0, 50) being best.

Three randomisations exist in the reference code, and all are offered:

- ``fixed(k)``: the last k steps (k = 1 is the low-memory "AlignProp K=1");
- ``uniform(kmin, kmax)``: K drawn once per batch, uniformly in [kmin, kmax] (the paper's
  description; varl's default);
- ``gaussian(mean, std, low, high)``: the 2024 rewrite's default — the detach threshold
  τ ~ N(42, 5), rounded and rejection-sampled into [1, 49], K = T − τ (8.8 of 50 on
  average);
- ``legacy_per_step(tmin, tmax)``: TRL's and the 2023 code's behaviour — a fresh threshold
  τ_i ~ U{tmin..tmax} at every step, so step i keeps its gradient with probability
  (i − tmin + 1) / (tmax − tmin + 1): a random, non-contiguous set biased to late steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from varl._checks import check_int

Kind = Literal["fixed", "uniform", "gaussian", "legacy_per_step"]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class TruncationSchedule:
    """How many (and which) final denoising steps carry gradients; build it with a constructor.

    Attributes:
        kind: ``"fixed"``, ``"uniform"``, ``"gaussian"`` or ``"legacy_per_step"``.
        low: K (fixed), kmin (uniform), the lowest τ (gaussian, legacy).
        high: K (fixed), kmax (uniform), the highest τ (gaussian, legacy).
        mean: Mean of τ (gaussian).
        std: Std of τ (gaussian).
    """

    kind: Kind
    low: int
    high: int
    mean: float = 0.0
    std: float = 0.0

    @classmethod
    def fixed(cls, k: int) -> TruncationSchedule:
        """Always the last ``k`` >= 0 steps."""
        check_int(k, "k")
        return cls("fixed", k, k)

    @classmethod
    def uniform(cls, kmin: int = 0, kmax: int = 50) -> TruncationSchedule:
        """K ~ U{kmin..kmax} once per batch (the paper's K ~ Uniform(0, 50))."""
        check_int(kmin, "kmin")
        check_int(kmax, "kmax")
        if kmin > kmax:
            raise ValueError(f"kmin, kmax: expected kmin <= kmax, got {kmin} > {kmax}")
        return cls("uniform", kmin, kmax)

    @classmethod
    def gaussian(
        cls, mean: float = 42.0, std: float = 5.0, low: int = 1, high: int = 49
    ) -> TruncationSchedule:
        """Threshold τ ~ N(mean, std) rejection-sampled into [low, high], K = T − τ."""
        check_int(low, "low")
        check_int(high, "high")
        if low > high or not np.isfinite(mean) or not (np.isfinite(std) and std > 0):
            raise ValueError(
                f"mean, std, low, high: expected finite mean, std > 0, low <= high; got "
                f"{mean}, {std}, {low}, {high}"
            )
        return cls("gaussian", low, high, float(mean), float(std))

    @classmethod
    def legacy_per_step(cls, tmin: int = 0, tmax: int = 50) -> TruncationSchedule:
        """A fresh threshold τ_i ~ U{tmin..tmax} at every step i (TRL's AlignPropTrainer)."""
        check_int(tmin, "tmin")
        check_int(tmax, "tmax")
        if tmin > tmax:
            raise ValueError(f"tmin, tmax: expected tmin <= tmax, got {tmin} > {tmax}")
        return cls("legacy_per_step", tmin, tmax)

    def grad_mask(self, num_steps: int, rng: np.random.Generator) -> BoolArray:
        """``[num_steps]`` mask, True where step i (0 = noisiest) keeps parameter gradients.

        Raises:
            ValueError: If ``num_steps`` < 1.
        """
        check_int(num_steps, "num_steps")
        if num_steps < 1:
            raise ValueError(f"num_steps: expected an int >= 1, got {num_steps}")
        steps = np.arange(num_steps)
        if self.kind == "legacy_per_step":
            thresholds = rng.integers(self.low, self.high + 1, size=num_steps)
            mask: BoolArray = steps >= thresholds
            return mask
        if self.kind == "fixed":
            k = self.low
        elif self.kind == "uniform":
            k = int(rng.integers(self.low, self.high + 1))
        else:
            while True:  # rejection sampling into [low, high], as the reference does
                tau = round(float(rng.normal(self.mean, self.std)))
                if self.low <= tau <= self.high:
                    break
            k = num_steps - tau
        k = min(max(k, 0), num_steps)
        return steps >= num_steps - k
