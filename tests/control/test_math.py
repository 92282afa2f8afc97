"""The DSAC-T math (spec §6.1 items 1–6) against hand-computed values and closed forms."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from numpy.testing import assert_allclose  # noqa: E402

from varl.control.dsac_t import (  # noqa: E402
    actor_loss,
    clip_sampled_target,
    dsac_t_critic_loss,
    ema_sigma_bar,
    fixed_clip_critic_loss,
    huber2025_critic_loss,
    polyak_update,
    temperature_loss,
    twin_targets,
)
from varl.control.networks import (  # noqa: E402
    GaussianCritic,
    SquashedGaussianActor,
    TwinGaussianCritic,
    squashed_gaussian_log_prob,
)

torch.set_num_threads(1)


def test_critic_std_positive_and_shapes_and_fused_matches_reference() -> None:
    torch.manual_seed(0)
    ref = [GaussianCritic(3, 2, (8, 8), "gelu") for _ in range(2)]
    twin = TwinGaussianCritic(3, 2, (8, 8), "gelu")
    twin.load_from_pair(ref[0], ref[1])
    obs, act = 100.0 * torch.randn(5, 3), torch.rand(5, 2) * 2 - 1
    mean, std = twin(obs, act)
    assert mean.shape == (2, 5) and std.shape == (2, 5)
    assert bool((std > 0).all())
    for k in range(2):
        m, s = ref[k](obs, act)
        assert m.shape == (5,) and s.shape == (5,)
        assert_allclose(mean[k].detach().numpy(), m.detach().numpy(), rtol=1e-5, atol=1e-5)
        assert_allclose(std[k].detach().numpy(), s.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_actor_log_std_clamp_and_log_prob() -> None:
    torch.manual_seed(0)
    actor = SquashedGaussianActor(3, 2, (8,), "relu")
    with torch.no_grad():
        actor.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 5.0, -50.0]))
        actor.net[-1].weight.zero_()
    _, log_std = actor(torch.zeros(1, 3))
    assert_allclose(log_std.detach().numpy(), [[0.5, -20.0]])
    act, _ = actor.sample(torch.zeros(4, 3), torch.Generator().manual_seed(1))
    assert bool((act.abs() <= 1).all())
    # Hand value: u = 0, mean 0, log_std 0 -> log N(0;0,1) = -0.5 log(2π); tanh'(0) = 1.
    lp = squashed_gaussian_log_prob(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    assert_allclose(lp.numpy(), [-0.9189385332 - torch.log(torch.tensor(1.0 + 1e-6)).item()])


def test_gradient_identity_of_the_surrogate_loss() -> None:
    gen = torch.Generator().manual_seed(3)
    mean = torch.randn(2, 6, generator=gen, dtype=torch.float64).requires_grad_()
    std = (torch.rand(2, 6, generator=gen, dtype=torch.float64) + 0.2).requires_grad_()
    y_q = torch.randn(6, generator=gen, dtype=torch.float64)
    y_z = y_q + 3.0 * torch.randn(6, generator=gen, dtype=torch.float64)
    sigma_bar = torch.tensor([0.4, 0.9], dtype=torch.float64)
    dsac_t_critic_loss(mean, std, y_q, y_z, sigma_bar).sum().backward()
    q, s = mean.detach(), std.detach()
    b = 3.0 * sigma_bar[:, None]
    c = q + torch.clamp(y_z - q, -b, b)
    omega = sigma_bar[:, None] ** 2 + 0.1
    d_q = -omega * (y_q - q) / (s**2 + 0.1)
    d_s = -omega * ((c - q) ** 2 - s**2) / (s**3 + 0.1)
    assert_allclose(mean.grad.numpy(), d_q.numpy(), rtol=1e-10)
    assert_allclose(std.grad.numpy(), d_s.numpy(), rtol=1e-10)


def test_huber2025_gradient_in_the_quadratic_zone() -> None:
    mean = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64, requires_grad=True)
    std = torch.tensor([[1.0, 2.0], [0.5, 1.5]], dtype=torch.float64, requires_grad=True)
    y_q = torch.tensor([2.0, -1.0], dtype=torch.float64)
    y_z = torch.tensor([3.0, -4.0], dtype=torch.float64)
    sigma_bar = torch.tensor([1.0, 1.0], dtype=torch.float64)
    huber2025_critic_loss(mean, std, y_q, y_z, sigma_bar).sum().backward()
    rho = torch.clamp(1.0 / (std.detach() ** 2 + 0.1), 0.1, 10.0)
    assert_allclose(mean.grad.numpy(), (rho * (mean.detach() - y_q)).numpy(), rtol=1e-10)
    # Critic 1, sample 1: C = 1 + clip(2, ±3) = 3; Huber(1, 3) = 2; ρ = 1/1.1.
    assert_allclose(std.grad[0, 0].item(), (1 / 1.1) * (1.0 - 2.0) / 1.1, rtol=1e-10)


def test_twin_selection_uses_the_smaller_mean_for_both_targets() -> None:
    next_mean = torch.tensor([[1.0, 5.0, -2.0], [3.0, 4.0, -1.0]])
    next_std = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    noise = torch.tensor([[0.5, 0.5, 0.5], [-1.0, -1.0, -1.0]])
    y_q, y_z = twin_targets(
        torch.tensor([1.0, 1.0, 1.0]),
        torch.tensor([0.0, 0.0, 1.0]),
        next_mean,
        next_std,
        noise,
        torch.tensor([0.0, 1.0, 0.0]),
        alpha=0.5,
        gamma=0.9,
    )
    # Sample 0 picks critic 1 (1 < 3); sample 1 picks critic 2 (4 < 5); sample 2 is terminal.
    assert_allclose(y_q.numpy(), [1 + 0.9 * 1.0, 1 + 0.9 * (4.0 - 0.5), 1.0])
    assert_allclose(y_z.numpy(), [1 + 0.9 * 1.5, 1 + 0.9 * (4.0 - 20.0 - 0.5), 1.0], rtol=1e-6)


def test_target_noise_is_clipped_at_three_and_samples_clip_to_three_sigma_bar() -> None:
    _, y_z = twin_targets(
        torch.zeros(2),
        torch.zeros(2),
        torch.zeros(2, 2),
        torch.ones(2, 2),
        torch.tensor([[100.0, -100.0], [100.0, -100.0]]),
        torch.zeros(2),
        alpha=0.0,
        gamma=1.0,
    )
    assert_allclose(y_z.numpy(), [3.0, -3.0])
    gen = torch.Generator().manual_seed(0)
    y = 10.0 * torch.randn(2, 1000, generator=gen)
    q = torch.randn(2, 1000, generator=gen)
    sigma_bar = torch.tensor([0.5, 2.0])
    clipped = clip_sampled_target(y, q, 3.0 * sigma_bar[:, None])
    assert bool(((clipped - q).abs() <= 3.0 * sigma_bar[:, None] + 1e-6).all())
    inside = (y - q).abs() <= 3.0 * sigma_bar[:, None]
    assert_allclose(clipped[inside].numpy(), y[inside].numpy(), rtol=1e-6, atol=1e-5)


def test_sigma_bar_ema() -> None:
    first = ema_sigma_bar(None, torch.tensor([[1.0, 3.0], [2.0, 2.0]]), 0.1)
    assert_allclose(first.numpy(), [2.0, 2.0])
    second = ema_sigma_bar(first, torch.tensor([[4.0, 4.0], [0.0, 0.0]]), 0.1)
    assert_allclose(second.numpy(), [0.9 * 2 + 0.1 * 4, 0.9 * 2], rtol=1e-6)


def _scaled_batch(c: float) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(7)
    q = 30.0 * c * torch.randn(2, 4000, generator=gen, dtype=torch.float64)
    sigma = 10.0 * c * (1.0 + torch.rand(2, 4000, generator=gen, dtype=torch.float64))
    y_q = q + 5.0 * c * torch.randn(4000, generator=gen, dtype=torch.float64)
    y_z = q + 40.0 * c * torch.randn(4000, generator=gen, dtype=torch.float64)
    return q, sigma, y_q, y_z, torch.tensor([15.0 * c, 15.0 * c], dtype=torch.float64)


def test_scale_behaviour_of_the_variance_based_adjustment() -> None:
    fractions, v1_fractions, grads, v1_grads = {}, {}, {}, {}
    for c in (0.1, 1.0, 10.0):
        q, sigma, y_q, y_z, sigma_bar = _scaled_batch(c)
        fractions[c] = float(((y_z - q).abs() > 3.0 * sigma_bar[:, None]).double().mean())
        v1_fractions[c] = float(((y_z - q).abs() > 20.0).double().mean())
        mean = q.clone().requires_grad_()
        dsac_t_critic_loss(mean, sigma, y_q, y_z, sigma_bar).sum().backward()
        grads[c] = float(mean.grad.abs().mean())
        mean_v1 = q.clone().requires_grad_()
        fixed_clip_critic_loss(mean_v1, sigma, y_q, y_z).sum().backward()
        v1_grads[c] = float(mean_v1.grad.abs().mean())
    # (a) the clipped fraction does not depend on the scale with b = 3σ̄, but does with b = 20.
    assert fractions[0.1] == pytest.approx(fractions[10.0], abs=1e-12)
    assert v1_fractions[0.1] < 0.01 < 0.9 < v1_fractions[10.0]
    # (b) DSAC-T's mean gradient scales like c (MSE-like); the fixed version's like 1/c.
    assert grads[10.0] / grads[1.0] == pytest.approx(10.0, rel=0.1)
    assert grads[1.0] / grads[0.1] == pytest.approx(10.0, rel=0.1)
    assert v1_grads[1.0] / v1_grads[10.0] == pytest.approx(10.0, rel=0.1)


def test_actor_temperature_and_polyak() -> None:
    loss = actor_loss(torch.tensor([-1.0, 2.0]), torch.tensor([[3.0, 0.0], [1.0, 5.0]]), 0.5)
    assert_allclose(loss.numpy(), [-0.5 - 1.0, 1.0 - 0.0])
    log_alpha = torch.tensor(1.0, requires_grad=True)
    temperature_loss(log_alpha, torch.tensor([0.5, 1.5]), -1.0).mean().backward()
    assert_allclose(log_alpha.grad.item(), -((0.5 - 1) + (1.5 - 1)) / 2)
    online, target = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(0.0)
    polyak_update(target, online, 0.25)
    assert_allclose(target.weight.item(), 0.25)
    with pytest.raises(ValueError, match="target/online"):
        polyak_update(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1, bias=False), 0.25)
