"""Many regressions at once: grouped and rolling fits against their peers, one process each.

Cases (``--full`` gives the issue's sizes; the default is a tenth or less, for a shared
machine):

- ``small``: 10,000 groups x 50 rows x 5 features (full) / 2,000 groups (default)
- ``tall``: 100 groups x 100,000 rows x 20 features (full) / 100 x 10,000
- ``rolling``: 1,000,000 rows x 5 features, window 250 (full) / 200,000 rows

Peers: torchlinreg (every statistic: params, bse, p-values, R2, F, llf), a statsmodels
``OLS`` loop (the same statistics), a numpy ``lstsq`` loop and ``torch.linalg.lstsq`` on a
padded batch (parameters only), polars-ols (``.over()`` coefficients, and ``group_by``
statistics) when it is installed, and statsmodels ``RollingOLS`` for the rolling case.
With ``--device cuda`` torchlinreg also runs on the GPU (``torchlinreg_cuda``), the data
moved there before the clock starts (a GPU user holds them there) and the device
synchronized before it stops.
Each peer runs in a fresh process (``--peer``), on data built from the same seed; the
time is the best of ``--repeat`` runs after one warm-up run, grouping included.

Usage::

    python benchmarks/grouped.py                      # default sizes, every case
    python benchmarks/grouped.py --case small --full --repeat 3
    python benchmarks/grouped.py --full --device cuda --skip statsmodels_rolling
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[1] / "src")
CASES = {  # name: (groups, rows per group, features) or (rows, features, window)
    "small": {"full": (10_000, 50, 5), "default": (2_000, 50, 5)},
    "tall": {"full": (100, 100_000, 20), "default": (100, 10_000, 20)},
    "rolling": {"full": (1_000_000, 5, 250), "default": (200_000, 5, 250)},
}
PEERS = {
    "small": ["torchlinreg", "statsmodels_loop", "numpy_lstsq_loop", "torch_lstsq_padded",
              "polars_ols_over", "polars_ols_stats"],
    "tall": ["torchlinreg", "statsmodels_loop", "numpy_lstsq_loop", "torch_lstsq_padded",
             "polars_ols_over", "polars_ols_stats"],
    "rolling": ["torchlinreg_rolling", "statsmodels_rolling", "polars_ols_rolling"],
}  # fmt: skip


# The data are made without BLAS (einsum, not ``@``): after a product OpenBLAS's threads
# spin for a while, and on two cores they took one from the timed call that followed (the
# grouped fit measured 0.088 s instead of 0.051 s, whatever the peer being timed).


def grouped_data(G: int, m: int, d: int):
    rng = np.random.default_rng(0)
    g = rng.permutation(np.repeat(np.arange(G), m))  # a group's rows anywhere
    X = rng.normal(size=(G * m, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-10, 10, d)
    y = np.einsum("ij,j->i", X, rng.normal(size=d)) + g % 7 + rng.normal(size=G * m)
    return X, y, g


def rolling_data(n: int, d: int):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)) + 100
    return X, np.einsum("ij,j->i", X, rng.normal(size=d)) + rng.normal(size=n)


def _split(X, y, g):
    order = np.argsort(g, kind="stable")
    cuts = np.flatnonzero(np.diff(g[order])) + 1
    return np.split(X[order], cuts), np.split(y[order], cuts)


def run_peer(peer: str, case: str, size: tuple) -> float:
    """One call of ``peer`` on the case's data; returns its seconds."""
    if case == "rolling":
        X, y = rolling_data(*size[:2])
    else:
        X, y, g = grouped_data(*size)
    if peer.endswith("_cuda"):
        import torch

        X, y = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()
        g = torch.from_numpy(g).cuda() if case != "rolling" else None
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    if peer in ("torchlinreg", "torchlinreg_cuda"):
        import torchlinreg

        res = torchlinreg.ols(X, y, groups=g)
        _ = (res.params, res.bse, res.pvalues, res.rsquared, res.fvalue, res.llf)
    elif peer == "statsmodels_loop":
        import statsmodels.api as sm

        for Xg, yg in zip(*_split(X, y, g), strict=True):
            r = sm.OLS(yg, sm.add_constant(Xg)).fit()
            _ = (r.params, r.bse, r.pvalues, r.rsquared, r.fvalue, r.llf)
    elif peer == "numpy_lstsq_loop":
        for Xg, yg in zip(*_split(X, y, g), strict=True):
            np.linalg.lstsq(np.c_[np.ones(len(yg)), Xg], yg, rcond=None)
    elif peer == "torch_lstsq_padded":
        import torch

        order = np.argsort(g, kind="stable")
        G, m, d = size  # equal group sizes: the padded batch is a reshape
        A = torch.from_numpy(np.c_[np.ones(len(y)), X][order]).reshape(G, m, d + 1)
        torch.linalg.lstsq(A, torch.from_numpy(y[order]).reshape(G, m, 1))
    elif peer.startswith("polars_ols"):
        import polars as pl
        import polars_ols  # noqa: F401  (registers .least_squares)

        d = X.shape[1]
        cols = {f"x{j}": X[:, j] for j in range(d)}
        xs = [pl.col(f"x{j}") for j in range(d)]
        if peer == "polars_ols_rolling":
            df = pl.DataFrame({"y": y, **cols})
            ols = pl.col("y").least_squares.rolling_ols(
                *xs, window_size=size[2], add_intercept=True, mode="coefficients"
            )
            df.select(ols)
        else:
            df = pl.DataFrame({"g": g, "y": y, **cols})
            if peer == "polars_ols_over":
                ols = pl.col("y").least_squares.ols(*xs, add_intercept=True, mode="coefficients")
                df.select(ols.over("g"))
            else:
                ols = pl.col("y").least_squares.ols(*xs, add_intercept=True, mode="statistics")
                df.group_by("g").agg(ols)
    elif peer in ("torchlinreg_rolling", "torchlinreg_rolling_cuda"):
        import torchlinreg

        res = torchlinreg.rolling_ols(X, y, window=size[2])
        _ = (res.params, res.bse, res.rsquared)
    elif peer == "statsmodels_rolling":
        import statsmodels.api as sm
        from statsmodels.regression.rolling import RollingOLS

        res = RollingOLS(y, sm.add_constant(X), window=size[2]).fit()
        _ = (res.params, res.bse, res.rsquared)
    else:
        raise SystemExit(f"unknown peer {peer!r}")
    if peer.endswith("_cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def worker(peer: str, case: str, size: tuple, repeat: int) -> None:
    run_peer(peer, case, size)  # warm-up: imports, first-call costs
    times = [run_peer(peer, case, size) for _ in range(repeat)]
    print(json.dumps({"peer": peer, "seconds": min(times)}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    ap.add_argument("--full", action="store_true", help="the issue's sizes")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip", action="append", default=[], help="a peer to leave out")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: torchlinreg on the GPU too")  # fmt: skip
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cases = args.case or list(CASES)
    if args.peer:
        case = cases[0]
        worker(args.peer, case, CASES[case]["full" if args.full else "default"], args.repeat)
        return 0
    for case in cases:
        size = CASES[case]["full" if args.full else "default"]
        print(f"\n{case} {size}")
        base = None
        peers = list(PEERS[case])
        if args.device == "cuda":
            peers.insert(1, peers[0] + "_cuda")
        for peer in peers:
            if peer in args.skip:
                continue
            cmd = [sys.executable, __file__, "--peer", peer, "--case", case,
                   "--repeat", str(args.repeat)] + (["--full"] if args.full else [])  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, env=_env())
            if out.returncode:
                last = (out.stderr.strip().splitlines() or ["?"])[-1]
                print(f"  {peer:22s} failed: {last}")
                continue
            sec = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
            base = sec if base is None else base
            print(f"  {peer:22s} {sec:9.3f} s  {sec / base:8.1f}x torchlinreg")
    return 0


def _env():
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


if __name__ == "__main__":
    sys.exit(main())
