"""DSAC-T: distributional soft actor-critic with three refinements, for gymnasium Box actions.

Paper: J. Duan, W. Wang, L. Xiao, J. Gao, S. E. Li et al., "Distributional Soft Actor-Critic with
Three Refinements", arXiv 2310.05858 (IEEE TPAMI 47(5), 2025). Each critic models the soft return
as Z_θ(s, a) ~ N(Q_θ(s, a), σ_θ(s, a)²). The three refinements over DSAC v1:

1. expected value substitution: the mean is regressed on the expected target y_q, the std on the
   sampled target y_z;
2. twin value distributions: per sample, the critic with the smaller target mean gives both
   targets;
3. variance-based critic gradient adjustment: a moving average σ̄ of the critic std sets the clip
   bound of y_z (3σ̄) and scales the gradient by ω = σ̄² + ε.

The file reads top to bottom: the math as small functions (tested one by one), the config, then
the agent ``DSACT`` with a Stable-Baselines3-shaped API (``learn``, ``predict``, ``save``,
``load``). Shapes: ``B`` batch, ``O`` observation size, ``A`` action size, ``N`` parallel envs.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from varl._checks import check_fraction, check_nonnegative, check_positive, check_unit_interval
from varl.control.buffer import ReplayBuffer
from varl.control.evaluation import evaluate_policy
from varl.control.networks import SquashedGaussianActor, TwinGaussianCritic

CriticLoss = Literal["paper", "huber2025", "fixed_clip"]

# --------------------------------------------------------------------------------------------
# The math, one function per equation. Losses return per-sample values; the caller reduces.
# --------------------------------------------------------------------------------------------


def twin_targets(
    reward: Tensor,
    terminated: Tensor,
    next_mean: Tensor,
    next_std: Tensor,
    noise: Tensor,
    next_log_prob: Tensor,
    *,
    alpha: float,
    gamma: float,
    noise_clip: float = 3.0,
) -> tuple[Tensor, Tensor]:
    """Expected and sampled soft targets from the twin critic with the smaller target mean.

    For j ∈ {1, 2}: Ẑ_j' = Q_j' + clip(ε_j, −c, c)·σ_j'; i* = argmin_j Q_j' per sample (refinement
    2, the same index for both targets), then (paper §IV, spec §1.2)
        y_q = r + γ(1 − d)(Q_{i*}' − α ℓ'),   y_z = r + γ(1 − d)(Ẑ_{i*}' − α ℓ').

    Args:
        reward: ``[B]`` rewards r.
        terminated: ``[B]`` 1.0 for a true termination d (truncation counts as 0.0).
        next_mean: ``[2, B]`` target critic means Q_j'(s', a'), a' from the target policy.
        next_std: ``[2, B]`` target critic stds σ_j'(s', a').
        noise: ``[2, B]`` standard-normal draws ε_j.
        next_log_prob: ``[B]`` ℓ' = log π_φ'(a'|s').
        alpha: Temperature α (a plain number: no gradient).
        gamma: Discount γ.
        noise_clip: Clip c of the standard-normal draw (3 in the paper's code).

    Returns:
        ``(y_q [B], y_z [B])``, both without gradient.
    """
    with torch.no_grad():
        sample = next_mean + noise.clamp(-noise_clip, noise_clip) * next_std  # [2, B]
        pick = next_mean.argmin(dim=0, keepdim=True)  # [1, B]
        q_next = next_mean.gather(0, pick)[0]
        z_next = sample.gather(0, pick)[0]
        keep = gamma * (1.0 - terminated)
        y_q = reward + keep * (q_next - alpha * next_log_prob)
        y_z = reward + keep * (z_next - alpha * next_log_prob)
    return y_q, y_z


def ema_sigma_bar(previous: Tensor | None, batch_std: Tensor, tau_b: float) -> Tensor:
    """Moving average of the critic std, σ̄ ← (1 − τ_b)σ̄ + τ_b·mean_B σ (refinement 3).

    Args:
        previous: ``[2]`` current σ̄ per critic, or None before the first update (σ̄ is then
            initialised to the first batch mean).
        batch_std: ``[2, B]`` critic stds on the current batch.
        tau_b: Averaging rate τ_b in (0, 1].

    Returns:
        ``[2]`` the new σ̄ (no gradient).
    """
    mean_std = batch_std.detach().mean(dim=-1)
    if previous is None:
        return mean_std
    return (1.0 - tau_b) * previous + tau_b * mean_std


def clip_sampled_target(y_z: Tensor, q_detached: Tensor, bound: Tensor | float) -> Tensor:
    """C(y_z) = Q_d + clip(y_z − Q_d, −b, b): the sampled target kept within b of the online mean.

    Args:
        y_z: ``[..., B]`` sampled targets.
        q_detached: ``[..., B]`` detached online critic means Q_d (the clip centre).
        bound: b, broadcastable to ``[..., B]`` (DSAC-T: ξσ̄ per critic, shape ``[2, 1]``).

    Returns:
        The clipped targets, same shape as ``y_z``.
    """
    b = torch.as_tensor(bound, dtype=y_z.dtype)
    return q_detached + torch.maximum(torch.minimum(y_z - q_detached, b), -b)


def dsac_t_critic_loss(
    mean: Tensor,
    std: Tensor,
    y_q: Tensor,
    y_z: Tensor,
    sigma_bar: Tensor,
    *,
    clip_xi: float = 3.0,
    eps: float = 0.1,
) -> Tensor:
    """Per-sample surrogate loss whose gradient is the DSAC-T critic gradient (paper form).

    With Q, σ the critic outputs, σ_d = sg(σ), Q_d = sg(Q), C = clip_sampled_target(y_z, Q_d,
    ξσ̄) and ω = σ̄² + ε (the refined critic gradient of the paper, spec §1.4):
        ∇L = ω·E[ −(y_q − Q)/(σ_d² + ε)·∇Q − ((C − Q_d)² − σ_d²)/(σ_d³ + ε)·∇σ ],
    obtained from ℓ = ω·[ −sg(y_q − Q)/(σ_d² + ε)·Q − sg((Q_d − C)² − σ_d²)/(σ_d³ + ε)·σ ].
    The loss value itself is not meaningful; only its gradient is. Fixed points: Q → E[y_q],
    σ² → E[(C − Q)²].

    Args:
        mean: ``[2, B]`` online critic means Q (with gradient).
        std: ``[2, B]`` online critic stds σ (with gradient).
        y_q: ``[B]`` expected targets.
        y_z: ``[B]`` sampled targets.
        sigma_bar: ``[2]`` moving-average std σ̄ per critic (no gradient).
        clip_xi: ξ of the clip bound b = ξσ̄.
        eps: ε, added to ω and to the per-sample divisors.

    Returns:
        ``[2, B]`` per-critic, per-sample surrogate losses.
    """
    sb = sigma_bar.detach().unsqueeze(-1)  # [2, 1]
    q_d, s_d = mean.detach(), std.detach().clamp(min=0.0)
    clipped = clip_sampled_target(y_z, q_d, clip_xi * sb)
    omega = sb**2 + eps
    mean_weight = (y_q - q_d) / (s_d**2 + eps)
    std_weight = ((q_d - clipped) ** 2 - s_d**2) / (s_d**3 + eps)
    return omega * (-mean_weight * mean - std_weight * std)


def fixed_clip_critic_loss(
    mean: Tensor, std: Tensor, y_q: Tensor, y_z: Tensor, *, td_bound: float = 20.0, eps: float = 0.1
) -> Tensor:
    """The ablation without the variance-based adjustment: a fixed clip b and ω = 1 (DSAC v1).

    Same surrogate as :func:`dsac_t_critic_loss` (expected value substitution and twin targets
    kept) but with b = ``td_bound`` (DSAC v1's ``TD_bound`` = 20) and no σ̄² + ε factor, so the
    update size scales like 1/reward-scale (spec §1.3, §6.3).

    Args:
        mean: ``[2, B]`` online critic means.
        std: ``[2, B]`` online critic stds.
        y_q: ``[B]`` expected targets.
        y_z: ``[B]`` sampled targets.
        td_bound: Fixed clip bound b.
        eps: ε of the per-sample divisors.

    Returns:
        ``[2, B]`` per-critic, per-sample surrogate losses.
    """
    q_d, s_d = mean.detach(), std.detach().clamp(min=0.0)
    clipped = clip_sampled_target(y_z, q_d, td_bound)
    mean_weight = (y_q - q_d) / (s_d**2 + eps)
    std_weight = ((q_d - clipped) ** 2 - s_d**2) / (s_d**3 + eps)
    return -mean_weight * mean - std_weight * std


def huber2025_critic_loss(
    mean: Tensor,
    std: Tensor,
    y_q: Tensor,
    y_z: Tensor,
    sigma_bar: Tensor,
    *,
    clip_xi: float = 3.0,
    eps: float = 0.1,
    huber_delta: float = 50.0,
    ratio_clip: tuple[float, float] = (0.1, 10.0),
) -> Tensor:
    """The critic loss of the authors' repository since July 2025 (not in the paper, spec §1.4).

    ρ = clamp(σ̄²/(σ_d² + ε), 0.1, 10) per sample and
    ℓ = ρ·[ Huber_δ(Q, y_q) + σ·(σ_d² − Huber_δ(Q_d, C))/(σ_d + ε) ].
    For |y_q − Q| < δ the mean gradient is ρ(Q − y_q); the std fixed point is σ² = ½E[(C − Q)²].

    Args:
        mean: ``[2, B]`` online critic means.
        std: ``[2, B]`` online critic stds.
        y_q: ``[B]`` expected targets.
        y_z: ``[B]`` sampled targets.
        sigma_bar: ``[2]`` moving-average std per critic.
        clip_xi: ξ of the clip bound.
        eps: ε of the divisors.
        huber_delta: δ of the Huber losses.
        ratio_clip: Bounds of ρ.

    Returns:
        ``[2, B]`` per-critic, per-sample losses.
    """
    sb = sigma_bar.detach().unsqueeze(-1)
    q_d, s_d = mean.detach(), std.detach().clamp(min=0.0)
    clipped = clip_sampled_target(y_z, q_d, clip_xi * sb)
    rho = (sb**2 / (s_d**2 + eps)).clamp(*ratio_clip)
    target_q = y_q.expand_as(mean)
    mean_term = F.huber_loss(mean, target_q, reduction="none", delta=huber_delta)
    spread = F.huber_loss(q_d, clipped, reduction="none", delta=huber_delta)
    return rho * (mean_term + std * (s_d**2 - spread) / (s_d + eps))


def actor_loss(log_prob: Tensor, q_means: Tensor, alpha: float) -> Tensor:
    """Per-sample policy loss α·log π(a|s) − min_j Q_j(s, a) (risk-neutral: σ is not used).

    Args:
        log_prob: ``[B]`` log π_φ(a|s) of reparameterised actions.
        q_means: ``[2, B]`` online critic means at those actions.
        alpha: Temperature α (no gradient).

    Returns:
        ``[B]`` losses.
    """
    return alpha * log_prob - q_means.min(dim=0).values


def temperature_loss(log_alpha: Tensor, log_prob: Tensor, target_entropy: float) -> Tensor:
    """Per-sample temperature loss −log α·(sg(log π) + H̄) (automatic entropy tuning).

    Args:
        log_alpha: Scalar log α (with gradient).
        log_prob: ``[B]`` log-probabilities (detached here).
        target_entropy: H̄, −dim(A) by default.

    Returns:
        ``[B]`` losses.
    """
    return -log_alpha * (log_prob.detach() + target_entropy)


def polyak_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """θ' ← (1 − τ)θ' + τθ for every parameter, in place."""
    targets: list[Tensor] = list(target.parameters())
    onlines: list[Tensor] = list(online.parameters())
    if len(targets) != len(onlines):
        raise ValueError("target/online: the modules have different parameter counts")
    with torch.no_grad():
        torch._foreach_lerp_(targets, onlines, tau)  # one call instead of a Python loop


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class DSACTConfig:
    """Hyper-parameters of DSAC-T; the defaults are the paper's (spec §1.7, §6.4).

    Every float field must be finite (NaN/inf is a ``ValueError`` naming the field), every
    integer field a true integer (2.5 or True is rejected), ``tau`` and ``tau_b`` in (0, 1].

    See :data:`SMALL_BUDGET` for the preset used on small budgets (one gradient step per env
    step, 2×128 networks, spec §6.2).
    """

    hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden layer sizes of the actor and of each critic."""
    activation: str = "gelu"
    """Hidden activation: ``gelu``, ``relu`` or ``tanh``."""
    actor_lr: float = 1e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 1e-4
    """Adam learning rate of the critics."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log α."""
    gamma: float = 0.99
    """Discount factor γ."""
    tau: float = 0.005
    """Polyak rate τ of the target critics and target policy."""
    tau_b: float | None = None
    """Rate τ_b of the σ̄ moving average; None uses ``tau``."""
    clip_xi: float = 3.0
    """ξ: the sampled target is clipped to ξσ̄ around the online mean."""
    std_eps: float = 0.1
    """ε: added to ω = σ̄² + ε and to the per-sample divisors."""
    target_noise_clip: float = 3.0
    """Clip of the standard-normal draw in the sampled target."""
    policy_delay: int = 2
    """The actor, α and the targets are updated on every ``policy_delay``-th gradient step."""
    init_log_alpha: float = 1.0
    """Initial log α (the paper starts at α₀ = e)."""
    auto_alpha: bool = True
    """Learn α by automatic entropy tuning; False keeps α = exp(init_log_alpha)."""
    target_entropy: float | None = None
    """Target entropy H̄; None means −dim(A)."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity."""
    learning_starts: int = 10_000
    """Env steps collected before the first gradient step. Gradient steps start once the replay
    buffer holds ``max(learning_starts, batch_size)`` transitions (capped at ``buffer_size``),
    so a value below ``batch_size`` is allowed and a run resumed without its buffer refills it
    first."""
    warmup: Literal["policy", "uniform"] = "policy"
    """Warm-up actions: from the initial policy (paper code) or uniform in the Box."""
    train_freq: int = 20
    """Env steps between gradient steps (the paper collects 20 per iteration)."""
    gradient_steps: int = 1
    """Gradient steps per ``train_freq`` env steps."""
    use_target_policy: bool = True
    """Draw the next action of the target from the Polyak-averaged target policy φ'."""
    critic_loss: CriticLoss = "paper"
    """``paper`` (default), ``huber2025`` (authors' July-2025 code) or ``fixed_clip`` (ablation)."""
    td_bound: float = 20.0
    """Fixed clip bound b of the ``fixed_clip`` ablation (DSAC v1's value)."""
    huber_delta: float = 50.0
    """δ of the Huber terms of ``huber2025``."""
    log_std_min: float = -20.0
    """Lower clamp of the policy's log σ."""
    log_std_max: float = 0.5
    """Upper clamp of the policy's log σ (0.5 in the paper's code)."""
    num_envs: int = 1
    """Parallel environments (gymnasium ``SyncVectorEnv``) used for collection."""
    eval_every: int = 5000
    """Evaluate the deterministic policy every this many env steps during ``learn`` (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation (>= 1 when ``eval_every`` > 0)."""

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (str, bytes)) or not self.hidden:
            raise ValueError(f"hidden: expected layer sizes >= 1, got {self.hidden!r}")
        for h in self.hidden:
            if not _is_int(h) or int(h) < 1:
                raise ValueError(f"hidden: expected integer layer sizes >= 1, got {self.hidden!r}")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if value is None and name in ("tau_b", "target_entropy"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name}: expected a real number, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
        for name in _INT_FIELDS:
            if not _is_int(getattr(self, name)):
                raise ValueError(f"{name}: expected an integer, got {getattr(self, name)!r}")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "clip_xi", "std_eps", "td_bound"):
            check_positive(getattr(self, name), name)
        check_positive(self.target_noise_clip, "target_noise_clip")
        check_positive(self.huber_delta, "huber_delta")
        check_unit_interval(self.gamma, "gamma")
        check_fraction(self.tau, "tau")
        if self.tau_b is not None:
            check_fraction(self.tau_b, "tau_b")
        for name in ("policy_delay", "batch_size", "buffer_size", "train_freq", "num_envs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)}")
        for name in ("gradient_steps", "eval_every", "eval_episodes"):
            check_nonnegative(getattr(self, name), name)
        if self.eval_every > 0 and self.eval_episodes < 1:
            raise ValueError(
                f"eval_episodes: expected >= 1 when eval_every > 0, got {self.eval_episodes}"
            )
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts: expected >= 0, got {self.learning_starts}")
        if not isinstance(self.auto_alpha, bool):
            raise ValueError(f"auto_alpha: expected True or False, got {self.auto_alpha!r}")
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"batch_size: {self.batch_size} is larger than buffer_size {self.buffer_size}"
            )
        if self.critic_loss not in ("paper", "huber2025", "fixed_clip"):
            raise ValueError(
                "critic_loss: expected 'paper', 'huber2025' or 'fixed_clip', "
                f"got {self.critic_loss!r}"
            )
        if self.warmup not in ("policy", "uniform"):
            raise ValueError(f"warmup: expected 'policy' or 'uniform', got {self.warmup!r}")
        if self.log_std_min >= self.log_std_max:
            raise ValueError(f"log_std_min: expected < log_std_max, got {self.log_std_min}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DSACTConfig:
        """Builds a config from a flat mapping (YAML), rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config: unknown field(s) {unknown}; known: {sorted(known)}")
        fixed = dict(values)
        for name in _FLOAT_FIELDS:  # YAML 1.1 reads ``1e-4`` (no dot) as a string
            if isinstance(fixed.get(name), str):
                try:
                    fixed[name] = float(fixed[name])
                except ValueError as exc:
                    raise ValueError(f"{name}: expected a number, got {fixed[name]!r}") from exc
        if "hidden" in fixed:
            fixed["hidden"] = tuple(fixed["hidden"])
        return cls(**fixed)


# The numeric fields __post_init__ validates, read off the annotations so a new field is
# checked without being listed twice.
_FLOAT_FIELDS = tuple(
    f.name for f in dataclasses.fields(DSACTConfig) if f.type in ("float", "float | None")
)
_INT_FIELDS = tuple(
    f.name for f in dataclasses.fields(DSACTConfig) if f.type in ("int", "int | None")
)


SMALL_BUDGET = DSACTConfig(
    hidden=(128, 128),
    actor_lr=1e-3,
    critic_lr=1e-3,
    init_log_alpha=0.0,
    learning_starts=1000,
    warmup="uniform",
    train_freq=1,
    eval_every=5000,
)
"""Spec §6.2 preset for small budgets (Pendulum in 15–20k steps): UTD 1, 2×128 GELU, lr 1e-3,
α₀ = 1, 1000 uniform warm-up steps; everything else as in the paper."""


# --------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------

Callback = Callable[["DSACT"], bool | None]


def _make_vector_env(
    env: str | gym.Env[Any, Any], num_envs: int
) -> gym.vector.VectorEnv[Any, Any, Any]:
    mode = gym.vector.AutoresetMode.SAME_STEP
    if isinstance(env, str):
        return gym.vector.SyncVectorEnv(
            [lambda: gym.make(env) for _ in range(num_envs)], autoreset_mode=mode
        )
    if isinstance(env, gym.Env):
        if num_envs != 1:
            raise ValueError("num_envs: pass an environment id to collect from several envs")
        return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=mode)
    raise TypeError(f"env: expected an environment id or a gymnasium.Env, got {type(env).__name__}")


class DSACT:
    """The DSAC-T agent: ``DSACT("Pendulum-v1", SMALL_BUDGET, seed=0).learn(15_000)``.

    Two agents built with the same seed, config and environment produce identical runs on CPU;
    ``predict(deterministic=False)`` draws from its own generator (seeded from ``seed``), so
    calling it does not change the training run.

    Log-probabilities are those of the action in the environment's Box: the tanh-squashed
    Gaussian density on [-1, 1] plus the constant −Σ log(half-range) of the affine map to the
    bounds (spec §1.1), so ``target_entropy`` (−dim(A) by default) is an entropy in the
    environment's action units, as in the authors' code.

    Args:
        env: A gymnasium environment id or an ``Env`` instance with a bounded ``Box`` action
            space. An id is made ``config.num_envs`` times for collection.
        config: Hyper-parameters (paper defaults when omitted).
        seed: Seeds network initialisation, action noise, replay sampling, ``predict``'s own
            noise and the environments.
        eval_env: Environment for :meth:`evaluate`; by default a fresh ``gym.make`` of the
            training environment's id (none when the environment has no id).
        log_dir: Folder for ``evaluations.csv`` (and TensorBoard scalars if ``tensorboard`` is
            installed); None writes nothing.

    Raises:
        TypeError: If the action space is not a ``gymnasium.spaces.Box``.
        ValueError: If the Box is unbounded or the observation space is not a flat Box.
    """

    def __init__(
        self,
        env: str | gym.Env[Any, Any],
        config: DSACTConfig | None = None,
        *,
        seed: int = 0,
        eval_env: gym.Env[Any, Any] | None = None,
        log_dir: str | Path | None = None,
    ) -> None:
        self.config = cfg = config if config is not None else DSACTConfig()
        if not isinstance(cfg, DSACTConfig):
            raise TypeError(f"config: expected a DSACTConfig, got {type(cfg).__name__}")
        self.seed = int(seed)
        self.env = _make_vector_env(env, cfg.num_envs)
        self.env_id: str | None = env if isinstance(env, str) else getattr(env.spec, "id", None)
        act_space, obs_space = self.env.single_action_space, self.env.single_observation_space
        if not isinstance(act_space, gym.spaces.Box):
            self.env.close()
            raise TypeError(
                f"env: DSAC-T needs a continuous gymnasium Box action space, got {act_space}"
            )
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            self.env.close()
            raise ValueError(f"env: the action Box must be bounded, got {act_space}")
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            self.env.close()
            raise ValueError(f"env: expected a flat Box observation space, got {obs_space}")
        self.obs_dim, self.act_dim = int(obs_space.shape[0]), int(act_space.shape[0])
        self.action_low = act_space.low.astype(np.float64)
        self.action_high = act_space.high.astype(np.float64)
        self.eval_env = eval_env
        if self.eval_env is None and self.env_id is not None:
            self.eval_env = gym.make(self.env_id)
        self.log_dir = None if log_dir is None else Path(log_dir)

        torch.manual_seed(self.seed)  # network initialisation
        self.actor = SquashedGaussianActor(
            self.obs_dim, self.act_dim, cfg.hidden, cfg.activation, cfg.log_std_min, cfg.log_std_max
        )
        self.critic = TwinGaussianCritic(self.obs_dim, self.act_dim, cfg.hidden, cfg.activation)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(float(cfg.init_log_alpha), requires_grad=cfg.auto_alpha)
        # foreach Adam: one multi-tensor update per step instead of a Python loop over tensors
        # (torch picks the per-tensor loop by default on CPU); numerically the same algorithm.
        self.actor_optimizer = torch.optim.Adam(
            self.actor.parameters(), lr=cfg.actor_lr, foreach=True
        )
        self.critic_optimizer = torch.optim.Adam(
            self.critic.parameters(), lr=cfg.critic_lr, foreach=True
        )
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.target_entropy = (
            -float(self.act_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        )
        self.sigma_bar: Tensor | None = None
        self.buffer = ReplayBuffer(cfg.buffer_size, self.obs_dim, self.act_dim)
        self.generator = torch.Generator().manual_seed(self.seed)
        # predict(deterministic=False) draws from its own stream so it never disturbs training
        predict_seed = int(np.random.SeedSequence([self.seed, 1]).generate_state(1)[0])
        self.predict_generator = torch.Generator().manual_seed(predict_seed)
        half_range = (self.action_high - self.action_low) / 2.0
        self.log_prob_offset = -float(np.log(half_range).sum())
        """−Σ log(half-range): added to the [-1, 1] log-density (spec §1.1)."""
        self.train_threshold = min(max(cfg.learning_starts, cfg.batch_size), cfg.buffer_size)
        """Gradient steps need this many transitions in the buffer (see ``learning_starts``)."""
        self.rng = np.random.default_rng(self.seed)
        self.num_timesteps = 0
        self.num_updates = 0
        self.num_episodes = 0
        self._pending_steps = 0  # env steps collected since the last gradient step(s)
        self._obs: np.ndarray[Any, Any] | None = None
        self.evaluations: list[dict[str, float]] = []
        self.last_stats: dict[str, float] = {}

    # ---- acting -------------------------------------------------------------------------

    @property
    def alpha(self) -> float:
        """The current temperature α = exp(log α)."""
        return float(self.log_alpha.detach().exp())

    def _to_env_action(self, action: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        centre = (self.action_high + self.action_low) / 2.0
        half = (self.action_high - self.action_low) / 2.0
        scaled: np.ndarray[Any, Any] = centre + half * action
        return scaled.astype(self.env.single_action_space.dtype)

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray[Any, Any], None]:
        """Actions for observations ``[O]`` or ``[N, O]``, in the environment's Box bounds.

        Returns:
            ``(action, None)`` — the second item mirrors SB3's recurrent state.
        """
        arr = np.asarray(obs, dtype=np.float32)
        single = arr.ndim == 1
        if arr.shape[-1] != self.obs_dim:
            raise ValueError(f"obs: expected shape [..., {self.obs_dim}], got {arr.shape}")
        with torch.no_grad():
            action, _ = self.actor.sample(
                torch.from_numpy(arr.reshape(-1, self.obs_dim)),
                self.predict_generator,
                deterministic,
            )
        env_action = self._to_env_action(action.numpy())
        return (env_action[0] if single else env_action), None

    # ---- one gradient step ----------------------------------------------------------------

    def train_step(self, *, critic_only: bool = False) -> dict[str, float]:
        """One DSAC-T gradient step on a replay minibatch (spec §1.6, §1.8).

        Critics every step; actor, α and the Polyak targets every ``policy_delay``-th step.

        Args:
            critic_only: Policy evaluation: skip the actor and α steps (the targets are still
                Polyak-averaged on delayed steps).

        Returns:
            Scalars of this step: critic loss, mean Q, mean |y_q − Q|, σ̄ per critic, the share of
            sampled targets beyond the clip bound, α, and the actor loss when it was updated.
        """
        cfg = self.config
        batch = self.buffer.sample(cfg.batch_size, self.rng)
        obs, act, rew = batch["obs"], batch["act"], batch["rew"]
        next_obs, term = batch["next_obs"], batch["term"]
        alpha = self.alpha

        policy = self.actor_target if cfg.use_target_policy else self.actor
        with torch.no_grad():
            next_act, next_log_prob = policy.sample(next_obs, self.generator)
            next_log_prob = next_log_prob + self.log_prob_offset
            next_mean, next_std = self.critic_target(next_obs, next_act)
            noise = torch.randn(next_mean.shape, generator=self.generator)
        y_q, y_z = twin_targets(
            rew,
            term,
            next_mean,
            next_std,
            noise,
            next_log_prob,
            alpha=alpha,
            gamma=cfg.gamma,
            noise_clip=cfg.target_noise_clip,
        )

        mean, std = self.critic(obs, act)  # [2, B] each
        tau_b = cfg.tau if cfg.tau_b is None else cfg.tau_b
        self.sigma_bar = ema_sigma_bar(self.sigma_bar, std, tau_b)
        if cfg.critic_loss == "paper":
            per_sample = dsac_t_critic_loss(
                mean, std, y_q, y_z, self.sigma_bar, clip_xi=cfg.clip_xi, eps=cfg.std_eps
            )
        elif cfg.critic_loss == "huber2025":
            per_sample = huber2025_critic_loss(
                mean,
                std,
                y_q,
                y_z,
                self.sigma_bar,
                clip_xi=cfg.clip_xi,
                eps=cfg.std_eps,
                huber_delta=cfg.huber_delta,
            )
        else:
            per_sample = fixed_clip_critic_loss(
                mean, std, y_q, y_z, td_bound=cfg.td_bound, eps=cfg.std_eps
            )
        if cfg.critic_loss == "fixed_clip":
            bound: Tensor | float = cfg.td_bound
        else:
            bound = cfg.clip_xi * self.sigma_bar.unsqueeze(-1)
        clip_fraction = float(((y_z - mean.detach()).abs() > bound).float().mean())
        critic_loss = per_sample.mean(dim=-1).sum()  # loss_1 + loss_2
        self.critic_optimizer.zero_grad()
        critic_loss.backward()  # type: ignore[no-untyped-call]
        self.critic_optimizer.step()
        self.num_updates += 1

        stats = {
            "critic_loss": float(critic_loss.detach()),
            "q_mean": float(mean.detach().mean()),
            "q_td_error": float((y_q - mean.detach()).abs().mean()),
            "sigma_bar_1": float(self.sigma_bar[0]),
            "sigma_bar_2": float(self.sigma_bar[1]),
            "clip_fraction": clip_fraction,
            "alpha": alpha,
        }
        if self.num_updates % cfg.policy_delay == 0:
            if critic_only:
                polyak_update(self.critic_target, self.critic, cfg.tau)
            else:
                stats.update(self._delayed_update(obs, alpha))
        self.last_stats = stats
        return stats

    def _delayed_update(self, obs: Tensor, alpha: float) -> dict[str, float]:
        """Actor and temperature steps, then Polyak averaging of the delayed targets."""
        cfg = self.config
        new_act, log_prob = self.actor.sample(obs, self.generator)
        log_prob = log_prob + self.log_prob_offset
        self.critic.requires_grad_(False)
        q_means, _ = self.critic(obs, new_act)
        self.critic.requires_grad_(True)
        loss = actor_loss(log_prob, q_means, alpha).mean()
        self.actor_optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self.actor_optimizer.step()
        if cfg.auto_alpha:
            a_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy).mean()
            self.alpha_optimizer.zero_grad()
            a_loss.backward()  # type: ignore[no-untyped-call]
            self.alpha_optimizer.step()
        polyak_update(self.critic_target, self.critic, cfg.tau)
        polyak_update(self.actor_target, self.actor, cfg.tau)
        return {"actor_loss": float(loss.detach()), "entropy": float(-log_prob.detach().mean())}

    # ---- collection and the training loop --------------------------------------------------

    def _check_finite(self, name: str, value: np.ndarray[Any, Any]) -> None:
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"env: non-finite {name} returned at env step {self.num_timesteps} "
                f"(values {np.asarray(value).ravel()[:8]})"
            )

    def _collect(self) -> None:
        """Steps every environment once and stores the transitions."""
        cfg = self.config
        if self._obs is None:
            obs, _ = self.env.reset(seed=self.seed + self.num_episodes)
            self._check_finite("observation", obs)
            self._obs = obs
        obs = self._obs
        if self.num_timesteps < cfg.learning_starts and cfg.warmup == "uniform":
            action = self.rng.uniform(-1.0, 1.0, size=(self.env.num_envs, self.act_dim))
        else:
            with torch.no_grad():
                sampled, _ = self.actor.sample(
                    torch.as_tensor(obs, dtype=torch.float32), self.generator
                )
            action = sampled.numpy()
        if not np.all(np.isfinite(action)):
            raise ValueError(
                f"agent: the DSAC-T policy produced a non-finite action at env step "
                f"{self.num_timesteps} (values {np.asarray(action).ravel()[:8]}); the actor's "
                "parameters have diverged"
            )
        next_obs, reward, terminated, truncated, info = self.env.step(self._to_env_action(action))
        self._check_finite("reward", reward)
        self._check_finite("observation", next_obs)
        stored_next = np.array(next_obs, copy=True)
        done = np.logical_or(terminated, truncated)
        if np.any(done):  # SAME_STEP autoreset: next_obs is already the reset observation
            for i in np.flatnonzero(done):
                stored_next[i] = info["final_obs"][i]
            self._check_finite("final observation", stored_next)
            self.num_episodes += int(done.sum())
        self.buffer.add(obs, action, reward, stored_next, terminated.astype(np.float64))
        self._obs = next_obs
        self.num_timesteps += self.env.num_envs

    def learn(
        self, total_steps: int, callback: Callback | None = None, progress_bar: bool = True
    ) -> DSACT:
        """Collects ``total_steps`` more env steps, training as the config prescribes.

        Args:
            total_steps: Env steps (transitions, summed over parallel envs) to add.
            callback: Called as ``callback(agent)`` after each collection step; returning
                False stops training.
            progress_bar: Show a tqdm bar with steps/s and the last evaluation return.

        Returns:
            The agent itself.

        Raises:
            ValueError: On a negative ``total_steps``, a non-finite value from the env, or a
                non-finite action from the agent (checked before the env is stepped).
        """
        if int(total_steps) < 0:
            raise ValueError(f"total_steps: expected >= 0, got {total_steps}")
        from tqdm.auto import tqdm

        cfg = self.config
        end = self.num_timesteps + int(total_steps)
        writer = self._open_writer()
        bar = tqdm(total=int(total_steps), disable=not progress_bar, unit="step", desc="DSAC-T")
        start, start_steps = time.perf_counter(), self.num_timesteps
        try:
            while self.num_timesteps < end:
                before = self.num_timesteps
                self._collect()
                bar.update(self.num_timesteps - before)
                if len(self.buffer) >= self.train_threshold:
                    self._pending_steps += self.num_timesteps - before
                    while self._pending_steps >= cfg.train_freq:
                        self._pending_steps -= cfg.train_freq
                        for _ in range(cfg.gradient_steps):
                            self.train_step()
                crossed = cfg.eval_every and before // cfg.eval_every != (
                    self.num_timesteps // cfg.eval_every
                )
                if crossed and self.eval_env is not None:
                    mean_ret, std_ret = self.evaluate(cfg.eval_episodes)
                    record = {
                        "step": float(self.num_timesteps),
                        "return_mean": mean_ret,
                        "return_std": std_ret,
                        "seconds": time.perf_counter() - start,
                        **self.last_stats,
                    }
                    self.evaluations.append(record)
                    self._log(record, writer)
                    rate = (self.num_timesteps - start_steps) / max(
                        time.perf_counter() - start, 1e-9
                    )
                    bar.set_postfix(steps_s=f"{rate:.0f}", eval_return=f"{mean_ret:.1f}")
                if callback is not None and callback(self) is False:
                    break
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return self

    def evaluate(
        self, episodes: int = 10, env: gym.Env[Any, Any] | None = None
    ) -> tuple[float, float]:
        """Mean and std of the undiscounted return of the deterministic policy.

        Episodes are seeded ``10_000 + seed + k`` so evaluations are reproducible; evaluation
        draws no training randomness.

        Raises:
            ValueError: If there is no evaluation environment or ``episodes`` < 1.
        """
        env = env if env is not None else self.eval_env
        if env is None:
            raise ValueError("env: no evaluation environment (pass eval_env= or env=)")
        return evaluate_policy(
            lambda obs: self.predict(obs, deterministic=True)[0], env, episodes, 10_000 + self.seed
        )

    def _open_writer(self) -> Any:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: CSV only
            return None
        return SummaryWriter(str(self.log_dir / "tensorboard"))

    def _log(self, record: dict[str, float], writer: Any) -> None:
        if self.log_dir is None:
            return
        path = self.log_dir / "evaluations.csv"
        fields = ["step", "return_mean", "return_std", "seconds"]
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as fh:
            out = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if new:
                out.writeheader()
            out.writerow(record)
        if writer is not None:
            step = int(record["step"])
            for key, value in record.items():
                if key != "step":
                    writer.add_scalar(f"dsac_t/{key}", value, step)

    # ---- checkpoints ---------------------------------------------------------------------

    def state_dict(self, include_buffer: bool = False) -> dict[str, Any]:
        """Everything needed to continue training: networks, optimisers, σ̄, α, counters, RNGs."""
        state: dict[str, Any] = {
            "config": dataclasses.asdict(self.config),
            "env_id": self.env_id,
            "seed": self.seed,
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "sigma_bar": None if self.sigma_bar is None else self.sigma_bar.clone(),
            "counters": {
                "num_timesteps": self.num_timesteps,
                "num_updates": self.num_updates,
                "num_episodes": self.num_episodes,
                "pending_steps": self._pending_steps,
            },
            "torch_rng": self.generator.get_state(),
            "predict_rng": self.predict_generator.get_state(),
            "numpy_rng": self.rng.bit_generator.state,
            "evaluations": list(self.evaluations),
        }
        if include_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output (the replay buffer too when it was saved)."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        sb = state["sigma_bar"]
        self.sigma_bar = None if sb is None else sb.clone()
        counters = state["counters"]
        self.num_timesteps = int(counters["num_timesteps"])
        self.num_updates = int(counters["num_updates"])
        self.num_episodes = int(counters["num_episodes"])
        self._pending_steps = int(counters["pending_steps"])
        self.generator.set_state(state["torch_rng"])
        if "predict_rng" in state:  # absent in checkpoints written before it existed
            self.predict_generator.set_state(state["predict_rng"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.evaluations = [dict(e) for e in state["evaluations"]]
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
        self._obs = None  # the environment restarts with a fresh episode

    def save(self, path: str | Path, include_buffer: bool = False) -> None:
        """Writes :meth:`state_dict` to ``path`` (a ``torch.save`` file; parents are created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        torch.save(self.state_dict(include_buffer=include_buffer), tmp)
        tmp.replace(target)  # atomic: a killed run never leaves a truncated checkpoint

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: str | gym.Env[Any, Any] | None = None,
        *,
        log_dir: str | Path | None = None,
    ) -> DSACT:
        """Rebuilds an agent from :meth:`save` output.

        Args:
            path: The checkpoint file.
            env: Environment to attach; None re-makes the saved environment id.
            log_dir: As in the constructor.

        Raises:
            ValueError: If the checkpoint has no environment id and ``env`` is None.
        """
        state = torch.load(Path(path), weights_only=True)
        env_arg = env if env is not None else state["env_id"]
        if env_arg is None:
            raise ValueError("env: the checkpoint has no environment id; pass env=")
        agent = cls(
            env_arg,
            DSACTConfig.from_dict(state["config"]),
            seed=int(state["seed"]),
            log_dir=log_dir,
        )
        agent.load_state_dict(state)
        return agent

    def close(self) -> None:
        """Closes the training and evaluation environments."""
        self.env.close()
        if self.eval_env is not None:
            self.eval_env.close()


__all__ = [
    "DSACT",
    "SMALL_BUDGET",
    "DSACTConfig",
    "actor_loss",
    "clip_sampled_target",
    "dsac_t_critic_loss",
    "ema_sigma_bar",
    "fixed_clip_critic_loss",
    "huber2025_critic_loss",
    "polyak_update",
    "temperature_loss",
    "twin_targets",
]
