"""PSRO-RAE vs PSRO-Nash and PSRO-uniform on a toy two-way road: crashes per 1000 episodes.

Paper: Slumbers et al., "A Game-Theoretic Framework for Managing Risk in Multi-Agent Systems",
ICML 2023 (arXiv 2205.15434). Claim tested (abstract level): in autonomous driving, RAE
"reduces instances of crashing by 7x" versus the best-performing baseline.

Reconstruction: the paper's driving experiment (deep RL on highway-env's two-way road) could not
be read or run here; ``varl.games.markov.two_way`` is a small stand-in that keeps its risk:
overtaking pays, two drivers overtaking at once meet head-on. Each arm runs symmetric PSRO (one
population for both drivers, exact value-iteration oracles) from a random stochastic policy;
PSRO-RAE uses the RAE meta-solver and the risk-aware oracle with γ, the baselines are
risk-neutral. The final meta-strategies are played for ``episodes`` sampled episodes per seed
(a policy pair drawn from σ per episode), and crashes counted; the exact crash probability under
σ is reported too.

Verdict: PSRO-RAE crashes less than the best baseline (mean over seeds, exact probabilities);
the measured ratio is reported next to the paper's 7x.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from varl.experiments.result import ExperimentResult, Panel, ProgressBar, Series
from varl.games.markov import TwoWayConfig, event_probability, make_two_way, sample_episodes
from varl.games.psro import MarkovProblem, PSROResult, psro

DESCRIPTION = "RAE (2205.15434): crashes of PSRO-RAE vs PSRO-Nash/uniform on a two-way road toy"
PAPER = "A Game-Theoretic Framework for Managing Risk in Multi-Agent Systems (arXiv 2205.15434)"

ARMS = ("rae", "nash", "uniform")


@dataclass(frozen=True, kw_only=True)
class RaeDrivingConfig:
    """Settings of the driving experiment."""

    gamma: float = 1.0
    """Risk aversion of PSRO-RAE."""
    psro_iterations: int = 8
    """PSRO iterations."""
    episodes: int = 1000
    """Sampled episodes per seed and arm."""
    seeds: int = 5
    """Seeds (initial random policy, PSRO and episode sampling)."""
    road: TwoWayConfig = field(default_factory=TwoWayConfig)
    """The road toy."""


QUICK = RaeDrivingConfig()
FULL = RaeDrivingConfig(psro_iterations=15, episodes=10000, seeds=10)


def crash_probability(problem: MarkovProblem, result: PSROResult, sigma: list[np.ndarray]) -> float:
    """Exact probability that an episode under the meta-strategy ``sigma`` ends with a crash."""
    pop = result.populations[0]
    return float(
        sum(
            sigma[0][j]
            * sigma[1][k]
            * event_probability(problem.game, pop[j], problem.policy_for(1, pop[k]), "crash")
            for j in range(len(sigma[0]))
            for k in range(len(sigma[1]))
            if sigma[0][j] * sigma[1][k] > 1e-12
        )
    )


def sample_crashes(
    problem: MarkovProblem, result: PSROResult, episodes: int, rng: np.random.Generator
) -> tuple[int, float]:
    """Plays ``episodes`` episodes, each with a policy pair drawn from the final meta-strategy.

    Returns:
        ``(episodes that ended with a crash, mean return of player 0)``.
    """
    pop, sigma = result.populations[0], result.meta_strategy
    first = rng.choice(len(pop), size=episodes, p=sigma[0])
    second = rng.choice(len(pop), size=episodes, p=sigma[1])
    crashes, total = 0, 0.0
    for j in range(len(pop)):
        for k in range(len(pop)):
            n = int(np.sum((first == j) & (second == k)))
            if n == 0:
                continue
            returns, final = sample_episodes(
                problem.game, pop[j], problem.policy_for(1, pop[k]), n, rng
            )
            crashes += int(problem.game.events["crash"][final].sum())
            total += float(returns[:, 0].sum())
    return crashes, total / episodes


def run(
    *, full: bool = False, seeds: int | None = None, progress: ProgressBar | None = None
) -> ExperimentResult:
    """Runs every arm over the seeds and judges the claim."""
    cfg = FULL if full else QUICK
    n_seeds = cfg.seeds if seeds is None else seeds
    if progress is not None:
        progress.reset(total=len(ARMS) * n_seeds)
    game = make_two_way(cfg.road)
    crashes: dict[str, list[int]] = {arm: [] for arm in ARMS}
    exact: dict[str, list[float]] = {arm: [] for arm in ARMS}
    returns: dict[str, list[float]] = {arm: [] for arm in ARMS}
    curves: dict[str, list[list[float]]] = {arm: [] for arm in ARMS}
    for arm in ARMS:
        for seed in range(n_seeds):
            problem = MarkovProblem(game, symmetric=True)
            gamma = cfg.gamma if arm == "rae" else 0.0
            result = psro(
                problem, meta_solver=arm, gamma=gamma, iterations=cfg.psro_iterations, seed=seed
            )
            count, mean_return = sample_crashes(
                problem, result, cfg.episodes, np.random.default_rng(10_000 + seed)
            )
            crashes[arm].append(count)
            returns[arm].append(mean_return)
            exact[arm].append(crash_probability(problem, result, result.meta_strategy))
            curve = [
                crash_probability(problem, result, [np.asarray(s) for s in h["meta_strategy"]])
                for h in result.history
            ]
            curve.append(exact[arm][-1])
            curve += [curve[-1]] * (cfg.psro_iterations + 1 - len(curve))
            curves[arm].append(curve)
            if progress is not None:
                progress.update(1)
    per_1000 = {arm: 1000.0 * np.sum(crashes[arm]) / (cfg.episodes * n_seeds) for arm in ARMS}
    mean_exact = {arm: float(np.mean(exact[arm])) for arm in ARMS}
    best = min(("nash", "uniform"), key=lambda a: mean_exact[a])
    ratio = mean_exact[best] / max(mean_exact["rae"], 1e-12)
    sampled_ratio = per_1000[best] / max(per_1000["rae"], 1e-12)
    verdict = bool(mean_exact["rae"] < mean_exact[best])

    metrics: dict[str, float] = {
        "best_baseline_is_nash": float(best == "nash"),
        "crash_ratio_best_baseline_to_rae_exact": ratio,
        "crash_ratio_best_baseline_to_rae_sampled": sampled_ratio,
    }
    for arm in ARMS:
        metrics[f"{arm}/crashes_per_1000"] = float(per_1000[arm])
        metrics[f"{arm}/crash_probability"] = mean_exact[arm]
        metrics[f"{arm}/mean_return"] = float(np.mean(returns[arm]))
        for seed in range(n_seeds):
            metrics[f"{arm}/seed{seed}/crashes_per_1000"] = (
                1000.0 * crashes[arm][seed] / cfg.episodes
            )
    table = [["arm", "crashes / 1000 episodes", "exact P(crash)", "mean return"]] + [
        [
            f"PSRO-{arm}" + (f" γ={cfg.gamma:g}" if arm == "rae" else ""),
            f"{per_1000[arm]:.1f}",
            f"{mean_exact[arm]:.4f}",
            f"{np.mean(returns[arm]):.3f}",
        ]
        for arm in ARMS
    ]
    x_iter = [float(v) for v in range(cfg.psro_iterations + 1)]
    panels = [
        Panel(
            title="crash probability of the meta-strategy",
            xlabel="PSRO iteration",
            ylabel="P(crash)",
            series=[
                Series(
                    label=f"PSRO-{arm}",
                    x=x_iter,
                    mean=np.mean(curves[arm], axis=0).tolist(),
                    low=np.min(curves[arm], axis=0).tolist(),
                    high=np.max(curves[arm], axis=0).tolist(),
                )
                for arm in ARMS
            ],
        )
    ]
    verdict_text = (
        f"Crashes per 1000 episodes: RAE {per_1000['rae']:.1f}, Nash {per_1000['nash']:.1f}, "
        f"uniform {per_1000['uniform']:.1f}; best baseline ({best}) / RAE = {ratio:.1f}x "
        f"(exact probabilities; {sampled_ratio:.1f}x sampled) vs 7x in the paper."
    )
    return ExperimentResult(
        name="rae_driving",
        paper=PAPER,
        claim="PSRO-RAE crashes less often than the best baseline meta-solver (the paper "
        "reports 7x fewer crashes on highway-env's two-way road).",
        verdict=verdict,
        verdict_text=verdict_text,
        metrics=metrics,
        table=table,
        panels=panels,
        settings={**asdict(cfg), "seeds": n_seeds, "full": full},
        seeds=list(range(n_seeds)),
        notes=[
            "Reconstruction: a discrete two-way road stand-in with exact oracles, not the "
            "paper's highway-env deep-RL setup; the ratio is ours, measured here.",
            "Under the mean-variance RAE a driver may hedge the opponent-induced variance by "
            "mixing its own actions, so RAE lowers but does not remove risky overtakes.",
        ],
    )
