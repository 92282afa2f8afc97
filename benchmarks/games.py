"""Speed and accuracy of the RAE solvers (varl.games.rae).

1. ``solve_rae`` on random n×n general-sum games (payoffs U[-1, 1]), n = 2 ... 256: seconds for
   the default call (2000 SFP iterations at most, stop at perturbed gap 1e-4) and for exactly
   2000 iterations. Target: 100×100 in under 1 s.
2. The mean–variance best response (``mean_variance_best_response``, the solver behind
   ``rae_best_response``) against cvxpy on the same inputs: the QP (τ = 0, OSQP and Clarabel)
   and the entropy-regularised problem (τ > 0, exponential cone, Clarabel). The cvxpy problem
   is parametrised and compiled once, so its timing is the warm re-solve. Accuracy: each
   solution's objective, evaluated in float64 by the same function, minus the best of the two
   (0 = best). Target: >= 10x faster at equal accuracy. Two timings, each the best over the
   repeats, with the two solvers alternating: "cold", one call right after the other solver's
   (varl's small working set is evicted by cvxpy's, which costs it up to 2-3x for small n;
   cvxpy's much larger working set mostly survives varl's call), and "warm", the best call of a
   block of back-to-back calls of the same solver (each solver in its steady state, as in a
   learning loop that calls one of them repeatedly).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/games.py`` (``--quick`` for a short run,
``--best-response`` for table 2 only; needs ``pip install cvxpy``, part of the dev extra). The
varl and cvxpy calls (or blocks of calls) alternate, so machine load hits both.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from varl.games.rae import _moments, _objective, mean_variance_best_response, solve_rae

_WARM = 3  # calls per back-to-back block in the warm best-response timing


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return float(best)


def bench_solve_rae(sizes: list[int], gamma: float, repeats: int) -> None:
    print(f"\n== solve_rae on random n x n games (gamma={gamma}, tau=1e-3) ==")
    print(f"{'n':>5} {'default s':>10} {'iters':>6} {'gap':>9} {'2000 it s':>10}")
    for n in sizes:
        rng = np.random.default_rng(n)
        game = [rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))]
        sol = solve_rae(game, gamma=gamma)
        t_default = _best_time(functools.partial(solve_rae, game, gamma=gamma), repeats)
        t_fixed = _best_time(functools.partial(solve_rae, game, gamma=gamma, tol=0.0), 1)
        print(f"{n:>5} {t_default:>10.3f} {sol.iterations:>6} {sol.gap:>9.2e} {t_fixed:>10.3f}")


def bench_best_response(sizes: list[int], gamma: float, taus: list[float], repeats: int) -> None:
    cp: Any = importlib.import_module("cvxpy")

    print(f"\n== best response vs cvxpy (gamma={gamma}); times are best of {repeats} ==")
    print(
        "   (cold: single calls, each right after the other solver's; warm: best call of a block"
        f" of {_WARM} back-to-back calls)"
    )
    header = (
        f"{'n':>5} {'tau':>6} {'varl ms':>9} {'cvxpy ms':>9} {'solver':>9} {'cold x':>9} "
        f"{'warm varl':>9} {'warm cvx':>9} {'warm x':>9} {'varl err':>9} {'cvxpy err':>9}"
    )
    print(header)
    for tau in taus:
        for n in sizes:
            rng = np.random.default_rng(100 + n)
            m = rng.uniform(-1, 1, (n, n))
            w = rng.dirichlet(np.ones(n))
            mu, z = _moments(m, w)

            def ours(m: np.ndarray = m, w: np.ndarray = w, tau: float = tau) -> np.ndarray:
                return mean_variance_best_response(m, w, gamma=gamma, tau=tau)

            p_ours = ours()
            for solver in ["OSQP", "CLARABEL"] if tau == 0 else ["CLARABEL"]:
                p = cp.Variable(n)
                # Var = ||diag(sqrt w) Z^T p||^2; one parameter matrix keeps the problem DPP.
                mu_par, a_par = cp.Parameter(n), cp.Parameter((n, n))
                objective = mu_par @ p - gamma * cp.sum_squares(a_par @ p)
                if tau > 0:
                    objective = objective + tau * cp.sum(cp.entr(p))
                problem = cp.Problem(cp.Maximize(objective), [p >= 0, cp.sum(p) == 1])
                mu_par.value, a_par.value = mu, np.sqrt(w)[:, None] * z.T
                kwargs = (
                    {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iter": 100000}
                    if solver == "OSQP"
                    else {}
                )

                def theirs(
                    problem: Any = problem, solver: str = solver, kwargs: dict[str, Any] = kwargs
                ) -> None:
                    problem.solve(solver=solver, **kwargs)

                theirs()  # compile once
                t_ours, t_cvx = np.inf, np.inf  # single calls, alternating
                w_ours, w_cvx = np.inf, np.inf  # blocks of _WARM calls, alternating
                for _ in range(repeats):
                    t_ours = min(t_ours, _best_time(ours, 1))
                    t_cvx = min(t_cvx, _best_time(theirs, 1))
                    w_ours = min(w_ours, _best_time(ours, _WARM))
                    w_cvx = min(w_cvx, _best_time(theirs, _WARM))
                p_cvx = np.clip(np.asarray(p.value).ravel(), 0, None)
                p_cvx = p_cvx / p_cvx.sum()
                f_ours = _objective(p_ours, mu, z, w, gamma, tau)
                f_cvx = _objective(p_cvx, mu, z, w, gamma, tau)
                best = max(f_ours, f_cvx)
                print(
                    f"{n:>5} {tau:>6g} {1e3 * t_ours:>9.3f} {1e3 * t_cvx:>9.3f} {solver:>9} "
                    f"{t_cvx / t_ours:>8.1f}x {1e3 * w_ours:>9.3f} {1e3 * w_cvx:>9.3f} "
                    f"{w_cvx / w_ours:>8.1f}x {best - f_ours:>9.1e} {best - f_cvx:>9.1e}"
                )


def bench_scale(gamma: float) -> None:
    print(f"\n== solve_rae(c * game, gamma={gamma}/c) against c = 1 (8x8 random game) ==")
    print(f"{'c':>8} {'seconds':>8} {'iters':>6} {'max |x_c - x_1|':>16}")
    rng = np.random.default_rng(8)
    game = [rng.uniform(-1, 1, (8, 8)), rng.uniform(-1, 1, (8, 8))]
    ref = solve_rae(game, gamma=gamma)
    for c in (1e-3, 1.0, 1e5):
        start = time.perf_counter()
        sol = solve_rae([c * g for g in game], gamma=gamma / c)
        seconds = time.perf_counter() - start
        diff = max(
            float(np.abs(a - b).max()) for a, b in zip(sol.profile, ref.profile, strict=True)
        )
        print(f"{c:>8g} {seconds:>8.3f} {sol.iterations:>6} {diff:>16.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument(
        "--best-response", action="store_true", help="only the best-response table (vs cvxpy)"
    )
    args = parser.parse_args()
    if args.best_response:
        bench_best_response([4, 16, 64, 256], gamma=0.5, taus=[0.0, 1e-3, 1e-2], repeats=20)
        return
    if args.quick:
        bench_solve_rae([2, 16, 100], gamma=0.5, repeats=1)
        bench_best_response([4, 64], gamma=0.5, taus=[0.0, 1e-2], repeats=3)
        bench_scale(gamma=0.5)
        return
    bench_solve_rae([2, 4, 8, 16, 32, 64, 100, 128, 256], gamma=0.5, repeats=3)
    bench_best_response([4, 16, 64, 256], gamma=0.5, taus=[0.0, 1e-3, 1e-2], repeats=20)
    bench_scale(gamma=0.5)


if __name__ == "__main__":
    main()
