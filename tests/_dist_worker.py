"""Worker of tests/test_distributed.py: one rank of a 2-process gloo group.

Each rank fits on its half of the rows of the same seeded problems and writes what it got
to ``OUT/rank{r}.npz`` (numpy, no pickle); the test compares those with 1-process fits.
Run as ``python tests/_dist_worker.py STORE_FILE RANK WORLD OUT``.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings

import numpy as np
import torch
import torch.distributed as dist

from torchlinreg import DataError, HuberRegressor, Lasso, LassoCV, LinearRegression, RidgeCV
from torchlinreg.datasets import make_regression
from torchlinreg.distributed.collectives import count_all_ranks, regression_metrics_all_ranks


def problem(n: int, d: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, size=d) + rng.uniform(-50, 50, size=d)
    W = rng.normal(size=(k, d))
    Y = X @ W.T + rng.normal(size=(n, k)) + 7.0
    w = rng.uniform(0.1, 3.0, size=n)
    return X, Y, w


def split(rank: int, world: int, *arrays):
    # Unequal shares on purpose (40% / 60% for 2 ranks): the merge must not care.
    n = arrays[0].shape[0]
    cut = [0, int(0.4 * n), n] if world == 2 else np.linspace(0, n, world + 1).astype(int)
    sl = slice(cut[rank], cut[rank + 1])
    return [None if a is None else a[sl] for a in arrays]


def main() -> None:
    store_file, rank, world, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    store = dist.FileStore(store_file, world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    res: dict[str, np.ndarray] = {}

    X, Y, w = problem(3000, 6, 3, seed=1)
    for solver in ("qr", "gram"):
        for weighted in (False, True):
            Xl, Yl, wl = split(rank, world, X, Y, w if weighted else None)
            m = LinearRegression(solver=solver).fit(Xl, Yl, wl)
            key = f"{solver}_{'w' if weighted else 'u'}"
            res[f"{key}_coef"], res[f"{key}_icpt"] = m.coef_, np.atleast_1d(m.intercept_)
            res[f"{key}_n"] = np.array([m.state_.n_samples])
            res[f"{key}_llf"] = np.atleast_1d(m.results_.llf)  # needs every rank's sum(log w)

    # fit_blocks: rank 1 holds three blocks, rank 0 none at all.
    blocks = [] if rank == 0 else [(X[i : i + 1000], Y[i : i + 1000]) for i in (0, 1000, 2000)]
    m = LinearRegression().fit_blocks(blocks)
    res["blocks_coef"], res["blocks_icpt"] = m.coef_, m.intercept_

    # Lasso from the merged state; LassoCV's fold states merged across ranks (issue 15).
    Xl, Yl, wl = split(rank, world, X, Y[:, 0], w)
    m = Lasso(alpha=0.5, tol=1e-12, max_iter=10_000).fit(Xl, Yl, wl)
    res["lasso_coef"], res["lasso_icpt"] = m.coef_, np.atleast_1d(m.intercept_)
    m = LassoCV(cv=3, alphas=8, tol=1e-12, max_iter=10_000)
    m.fit_blocks([(Xl[i : i + 500], Yl[i : i + 500]) for i in range(0, len(Yl), 500)])
    res["lassocv_alpha"], res["lassocv_coef"] = np.array([m.alpha_]), m.coef_
    res["lassocv_mse"], res["lassocv_n"] = m.mse_path_, np.array([m.state_.n_samples])

    # partial_fit twice: each call merges the ranks' states again.
    Xl, Yl, _ = split(rank, world, X, Y, None)
    m = LinearRegression()
    half = Xl.shape[0] // 2
    m.partial_fit(Xl[:half], Yl[:half]).partial_fit(Xl[half:], Yl[half:])
    res["partial_coef"], res["partial_icpt"] = m.coef_, m.intercept_

    Xi, yi = make_regression(4000, 8, noise=1.0, seed=3)[:2]
    Xi, yi = np.asarray(Xi), np.asarray(yi)
    Xl, yl = split(rank, world, Xi, yi)
    for solver in ("sgd", "adam", "gd", "lbfgs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = LinearRegression(solver=solver, random_state=0, max_iter=100).fit(Xl, yl)
        res[f"{solver}_coef"] = np.atleast_2d(m.coef_)
        res[f"{solver}_icpt"] = np.atleast_1d(m.intercept_)
        res[f"{solver}_loss"] = np.array(m.loss_history_)
        res[f"{solver}_gap"] = np.array([m.optimality_gap_])  # from the merged Gram

    # Rank 0's rows all weigh 0: a part of the data for the iterative solvers too (they
    # refused the fit on every rank); every rank's weights 0: refused on every rank.
    zero = np.full(len(yl), 0.0 if rank == 0 else 1.0)
    m = LinearRegression(solver="lbfgs", random_state=0).fit(Xl, yl, zero)
    res["zero_rank_coef"], res["zero_rank_icpt"] = m.coef_, np.atleast_1d(m.intercept_)
    try:
        LinearRegression(solver="lbfgs").fit(Xl, yl, np.zeros(len(yl)))
        res["error_all_zero"] = np.frombuffer(b"no error", dtype=np.uint8)
    except DataError as exc:
        res["error_all_zero"] = np.frombuffer(str(exc).encode(), dtype=np.uint8)

    # float32 rows on one rank, float64 on the other: trained in float64 on both (gloo
    # aborted on the collectives' mismatch); coef_ in each rank's own dtype
    mixed = Xl.astype(np.float32) if rank == 1 else Xl
    m = LinearRegression(solver="lbfgs", random_state=0).fit(mixed, yl)
    res["mixed_dtype_coef"] = np.asarray(m.coef_, dtype=np.float32)

    # Metrics over every rank's rows (what `train` reports for iterative solvers).
    Xm, Ym, wm = split(rank, world, X, Y, w)
    pred = torch.as_tensor(Ym) + torch.as_tensor(Xm[:, :3]) * 0.1
    metrics = regression_metrics_all_ranks(
        torch.as_tensor(Ym), pred, torch.as_tensor(wm), uncentered=True
    )
    for name, values in metrics.items():
        res[f"metric_{name}"] = values.numpy()
    res["rows"] = np.array([count_all_ranks(Xm.shape[0])])

    # A bad value on rank 1 only: both ranks must raise, none may hang.
    Xb = Xl.copy()
    if rank == 1:
        Xb[5, 2] = np.nan
    for solver in ("qr", "adam"):
        try:
            LinearRegression(solver=solver).fit(torch.as_tensor(Xb), yl)
            res[f"error_{solver}"] = np.frombuffer(b"no error", dtype=np.uint8)
        except DataError as exc:
            res[f"error_{solver}"] = np.frombuffer(str(exc).encode(), dtype=np.uint8)

    # Columns matched by name (NOTE [columns by name across ranks]): rank 1's DataFrame
    # holds them in another order; both ranks must refuse, exact and iterative.
    import pandas as pd

    Xl, Yl, _ = split(rank, world, X, Y[:, 0], None)
    frame = pd.DataFrame(Xl, columns=list("abcdef"))
    if rank == 1:
        frame = frame[list("cabdef")]
    for solver in ("qr", "lbfgs"):
        try:
            LinearRegression(solver=solver).fit(frame, Yl)
            res[f"columns_{solver}"] = np.frombuffer(b"no error", dtype=np.uint8)
        except DataError as exc:
            res[f"columns_{solver}"] = np.frombuffer(str(exc).split(" (this")[0].encode(), np.uint8)

    # fit of the CV estimators merges the ranks' folds; what cannot merge is refused
    m = RidgeCV(alphas=[0.1, 10.0, 1000.0], cv=3).fit(Xl, Yl)
    res["ridgecv_alpha"], res["ridgecv_coef"] = np.array([m.alpha_]), m.coef_
    res["ridgecv_n"] = np.array([m.state_.n_samples])
    m = LassoCV(cv=3, alphas=8, tol=1e-12, max_iter=10_000).fit(Xl, Yl)
    res["lassocv_fit_alpha"], res["lassocv_fit_coef"] = np.array([m.alpha_]), m.coef_
    res["lassocv_fit_n"] = np.array([m.state_.n_samples])
    for name, est in (("ridgecv_loo", RidgeCV()), ("huber", HuberRegressor())):
        try:
            est.fit(Xl, Yl)
            res[f"refused_{name}"] = np.frombuffer(b"no error", dtype=np.uint8)
        except DataError as exc:
            res[f"refused_{name}"] = np.frombuffer(str(exc).encode(), dtype=np.uint8)

    np.savez(os.path.join(out, f"rank{rank}.npz"), **res)
    # As `train` does (cli/torchrun.py): free the DDP wrappers while the group is alive,
    # and let every rank finish its last collective before the group goes. Destroying it
    # while gloo still held work aborted a worker at exit now and then under load
    # ("terminate called without an active exception").
    del m
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
