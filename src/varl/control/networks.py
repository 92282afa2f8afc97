"""Networks of DSAC-T: a tanh-squashed Gaussian actor and twin Gaussian value-distribution critics.

Paper: Duan et al., DSAC-T, arXiv 2310.05858, §IV (value distribution Z(s, a) ~ N(Q, σ²), policy
π(a|s) a tanh-squashed diagonal Gaussian). Shapes: ``B`` batch, ``O`` observation size, ``A``
action size. Actions inside varl.control are normalised to [-1, 1]; the agent maps them to the
environment's Box bounds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}
_FUNCTIONAL: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "relu": F.relu,
    "tanh": torch.tanh,
}


def _check_net_args(hidden: Sequence[int], activation: str) -> tuple[int, ...]:
    sizes = tuple(int(h) for h in hidden)
    if not sizes or any(h < 1 for h in sizes):
        raise ValueError(f"hidden: expected one or more layer sizes >= 1, got {hidden!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return sizes


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int], activation: str) -> nn.Sequential:
    """A multilayer perceptron ``[B, in_dim] -> [B, out_dim]`` with a linear output layer."""
    sizes = (in_dim, *_check_net_args(hidden, activation), out_dim)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def squashed_gaussian_log_prob(u: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """Log-density of ``a = tanh(u)``, ``u ~ N(mean, exp(log_std)²)``, in the normalised space.

    log π(a|s) = Σ_i [log N(u_i; μ_i, σ_i²) − log(1 + 1e-6 − tanh²(u_i))]  (change of variables;
    the 1e-6 keeps the log finite where tanh saturates, as in the authors' code).

    Args:
        u: Pre-squash samples ``[B, A]``.
        mean: Gaussian means ``[B, A]``.
        log_std: Gaussian log standard deviations ``[B, A]``.

    Returns:
        ``[B]`` log-probabilities.
    """
    var = torch.exp(2.0 * log_std)
    gauss = -((u - mean) ** 2) / (2.0 * var) - log_std - 0.5 * math.log(2.0 * math.pi)
    jacobian = torch.log(1.0 + 1e-6 - torch.tanh(u) ** 2)
    return (gauss - jacobian).sum(dim=-1)


class SquashedGaussianActor(nn.Module):
    """π_φ(a|s): an MLP giving (μ, log σ), log σ clamped to ``[log_std_min, log_std_max]``.

    The paper's code clamps log σ to [−20, 0.5] (upper bound 0.5, not SAC's usual 2).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        activation: str,
        log_std_min: float = -20.0,
        log_std_max: float = 0.5,
    ) -> None:
        super().__init__()
        if log_std_min >= log_std_max:
            raise ValueError(
                f"log_std_min: expected < log_std_max ({log_std_max}), got {log_std_min}"
            )
        self.net = mlp(obs_dim, 2 * act_dim, hidden, activation)
        self.act_dim = act_dim
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(mean [B, A], log_std [B, A])`` of the pre-squash Gaussian."""
        out = self.net(obs)
        mean, log_std = out[..., : self.act_dim], out[..., self.act_dim :]
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(
        self, obs: Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Draws a reparameterised action.

        Args:
            obs: Observations ``[B, O]``.
            generator: Torch generator for the Gaussian noise (the agent owns one for seeding).
            deterministic: Use ``tanh(μ)`` instead of a sample.

        Returns:
            ``(action [B, A] in [-1, 1], log_prob [B])``; gradients flow through both.
        """
        mean, log_std = self(obs)
        if deterministic:
            u = mean
        else:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            u = mean + torch.exp(log_std) * noise
        return torch.tanh(u), squashed_gaussian_log_prob(u, mean, log_std)


class GaussianCritic(nn.Module):
    """One value-distribution critic (s, a) -> (Q_θ(s, a), σ_θ(s, a)), σ = softplus(raw) > 0.

    The plain reference version of :class:`TwinGaussianCritic` (used by tests).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], activation: str) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 2, hidden, activation)

    def forward(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(mean [B], std [B])`` for observations ``[B, O]`` and actions ``[B, A]``."""
        out = self.net(torch.cat([obs, act], dim=-1))
        return out[..., 0], F.softplus(out[..., 1])


class TwinGaussianCritic(nn.Module):
    """The two critics θ1, θ2 fused: stacked weights ``[2, in, out]``, one batched matmul per layer.

    Mathematically two independent :class:`GaussianCritic` networks (their parameters never mix;
    Adam is elementwise, so one Adam over the stacked tensors equals two separate Adams). Each
    layer is initialised like ``nn.Linear`` (uniform in ±1/sqrt(fan_in)).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], activation: str) -> None:
        super().__init__()
        sizes = (obs_dim + act_dim, *_check_net_args(hidden, activation), 2)
        self.activation = activation
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(
                nn.Parameter(torch.empty(2, fan_in, fan_out).uniform_(-bound, bound))
            )
            self.biases.append(nn.Parameter(torch.empty(2, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """Evaluates both critics on the same batch.

        Args:
            obs: ``[B, O]`` observations.
            act: ``[B, A]`` normalised actions.

        Returns:
            ``(mean [2, B], std [2, B])``; row k is critic θ_{k+1}.
        """
        x = torch.cat([obs, act], dim=-1).unsqueeze(0).expand(2, -1, -1)
        act_fn = _FUNCTIONAL[self.activation]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = act_fn(x)
        return x[..., 0], F.softplus(x[..., 1])

    def load_from_pair(self, first: GaussianCritic, second: GaussianCritic) -> None:
        """Copies the weights of two reference critics into the stacked tensors."""
        pairs = [[m for m in critic.net if isinstance(m, nn.Linear)] for critic in (first, second)]
        if len(pairs[0]) != len(self.weights) or len(pairs[1]) != len(self.weights):
            raise ValueError("first/second: layer count differs from this twin critic")
        with torch.no_grad():
            for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                for k in range(2):
                    w[k].copy_(pairs[k][i].weight.T)
                    b[k, 0].copy_(pairs[k][i].bias)
