"""Check torchlinreg on a GPU against the CPU, and time both: a short, prepared script.

Run on a CUDA machine from the repository root (a few minutes at most, usually seconds)::

    PYTHONPATH=src python benchmarks/gpu_check.py            # 200k x 50, 3 targets
    PYTHONPATH=src python benchmarks/gpu_check.py --quick    # 5k x 8: a smoke test

Each check fits the same float64 data (several targets, sample weights) on the CPU and on
the device and prints the largest relative difference of the coefficients and intercepts,
its tolerance, and the median time of each side. Exits 1 if any check fails. Without CUDA
(or with ``--device cpu``) it runs the same checks with the CPU as "device", says so, and
so stays testable on the project's CPU-only machines; the timings then mean nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from torchlinreg.estimator.linear import LinearRegression
from torchlinreg.exact.state import LeastSquaresState, fit_exact
from torchlinreg.iterative.fit import fit_iterative


@dataclass
class Check:
    name: str
    fit: Callable[[torch.device], tuple[torch.Tensor, torch.Tensor]]  # -> coef, intercept
    tol: float
    repeat: int = 3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fit, device: torch.device, repeat: int):
    out = fit(device)  # warm-up: CUDA context, cuBLAS/cuSOLVER handles, lazy imports
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fit(device)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def make_data(n: int, d: int, k: int, seed: int = 0):
    """Float64 ``X`` (scaled, offset columns), ``Y`` with ``k`` targets, weights in [0.5, 2]."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    X = X * torch.empty(d, dtype=torch.float64).uniform_(0.5, 5.0, generator=g)
    X = X + torch.empty(d, dtype=torch.float64).uniform_(-3.0, 3.0, generator=g)
    W = torch.randn(d, k, generator=g, dtype=torch.float64)
    Y = X @ W + torch.randn(k, generator=g, dtype=torch.float64)
    Y = Y + 0.5 * torch.randn(n, k, generator=g, dtype=torch.float64)
    w = torch.empty(n, dtype=torch.float64).uniform_(0.5, 2.0, generator=g)
    return X, Y, w


def build_checks(X, Y, w, quick: bool) -> list[Check]:
    """The checks: exact qr and gram (weighted, k targets), float32 compute, the estimator
    (with its statistics and prediction), a merged state, and gd / lbfgs iterations."""
    on = {}

    def data(device):
        # Moved once per device, outside the timed region: a real GPU user holds the data there.
        if device not in on:
            on[device] = tuple(t.to(device) for t in (X, Y, w))
        return on[device]

    def exact(method, dtype=torch.float64):
        def fit(device):
            Xd, Yd, wd = data(device)
            _, sol = fit_exact(Xd, Yd, sample_weight=wd, method=method, dtype=dtype)
            assert sol.coef.device.type == device.type, "solution left the device"
            return sol.coef, sol.intercept

        return fit

    def estimator(device):
        Xd, Yd, wd = data(device)
        m = LinearRegression().fit(Xd, Yd, sample_weight=wd)
        pred = m.predict(Xd[:100])
        assert pred.device.type == device.type, "prediction left the device"
        se = torch.as_tensor(m.results_.bse)  # statistics built from the device state
        assert bool(torch.isfinite(se).all()), "non-finite standard errors"
        return m.coef_, torch.cat([m.intercept_, pred[:, 0]])

    def refined(device):
        # a forced refinement of a large fit: its passes take bits as needed (NOTE [bits in
        # refinement]), the budget's estimates come from the CPU statistics
        from torchlinreg.stats.results import OLSResults

        Xd, Yd, wd = data(device)
        state, sol = fit_exact(Xd, Yd, sample_weight=wd)
        res = OLSResults.from_fit(Xd, Yd, wd, True, state, sol, refine=True)
        return torch.as_tensor(res.params), torch.as_tensor(res.bse)

    def merged(device):
        Xd, Yd, wd = data(device)
        half = Xd.shape[0] // 2
        states = [
            LeastSquaresState(Xd.shape[1], Yd.shape[1], device=device).absorb(Xd[s], Yd[s], wd[s])
            for s in (slice(0, half), slice(half, None))
        ]
        sol = LeastSquaresState.merge_all(states).solve()
        return sol.coef, sol.intercept

    def iterative(solver, epochs):
        def fit(device):
            Xd, Yd, wd = data(device)
            res = fit_iterative(
                Xd, Yd, sample_weight=wd, solver=solver, max_iter=epochs, tol=None, random_state=0
            )
            return res.coef, res.intercept

        return fit

    def grouped(device):
        # one fit per group, batched where the data lies (models/grouped.py)
        from torchlinreg.models.grouped import grouped_ols

        Xd, Yd, wd = data(device)
        groups = torch.arange(Xd.shape[0], device=device) % (50 if quick else 1000)
        res = grouped_ols(Xd, Yd[:, 0], groups=groups, sample_weight=wd)
        return torch.as_tensor(res.params), torch.as_tensor(res.bse)

    def rolling(device):
        from torchlinreg.models.rolling import rolling_ols

        Xd, Yd, _ = data(device)
        rows = min(Xd.shape[0], 20_000)
        res = rolling_ols(Xd[:rows], Yd[:rows, 0], window=250)
        return torch.as_tensor(res.params).nan_to_num(), torch.as_tensor(res.bse).nan_to_num()

    epochs = 20 if quick else 50
    return [
        Check("exact qr, weighted, float64", exact("qr"), 1e-10),
        Check("exact gram, weighted, float64", exact("gram"), 1e-8),
        Check("exact qr, float32 compute", exact("qr", torch.float32), 1e-3),
        Check("LinearRegression() + results_ + predict", estimator, 1e-10),
        Check("refined statistics (bits as needed)", refined, 1e-10),
        Check("two states merged", merged, 1e-10),
        Check("grouped OLS, one fit per group, weighted", grouped, 1e-10),
        Check("rolling OLS, window 250", rolling, 1e-8),
        # Full-batch solvers draw no random order, so CPU and GPU differ by rounding only.
        Check(f"fit_iterative gd, {epochs} epochs", iterative("gd", epochs), 1e-8, 2),
        Check(f"fit_iterative lbfgs, {epochs} epochs", iterative("lbfgs", epochs), 1e-6, 2),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small data: a smoke test in seconds")
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--rows", type=int, default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cpu = torch.device("cpu")
    n = args.rows or (5_000 if args.quick else 200_000)
    d, k = (8, 3) if args.quick else (50, 3)
    X, Y, w = make_data(n, d, k)
    if device.type == "cpu":
        print("NOTE: no CUDA device used: checking CPU against CPU (timings mean nothing)")
    else:
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    threads = torch.get_num_threads()
    print(f"data: n={n:,} d={d} k={k} float64, sample weights; cpu threads {threads}")
    head = (
        f"{'check':<42} {'cpu':>10} {device.type:>10} {'speed-up':>9} "
        f"{'max rel diff':>13} {'tol':>7}"
    )
    print(head)
    print("-" * len(head))
    failed = []
    for check in build_checks(X, Y, w, args.quick):
        try:
            (c_coef, c_icpt), t_cpu = _timed(check.fit, cpu, check.repeat)
            (d_coef, d_icpt), t_dev = _timed(check.fit, device, check.repeat)
            diff = max(_rel_diff(d_coef, c_coef), _rel_diff(d_icpt, c_icpt))
        except Exception as exc:  # report every check, then fail
            print(f"{check.name:<42} ERROR {type(exc).__name__}: {exc}")
            failed.append(check.name)
            continue
        ok = diff <= check.tol
        if not ok:
            failed.append(check.name)
        print(
            f"{check.name:<42} {t_cpu * 1e3:8.1f}ms {t_dev * 1e3:8.1f}ms {t_cpu / t_dev:8.2f}x "
            f"{diff:13.2e} {check.tol:7.0e} {'ok' if ok else 'FAIL'}"
        )
    print("all checks passed" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
