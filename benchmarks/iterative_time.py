"""Time to reach the exact R2 within 1e-6 on raw data: iterative solvers side by side.

Run from the repository root::

    PYTHONPATH=src python benchmarks/iterative_time.py            # 1M x 50, about 10 minutes
    PYTHONPATH=src python benchmarks/iterative_time.py --quick    # 20k x 10, a smoke test
    PYTHONPATH=src python benchmarks/iterative_time.py --only tlr_lbfgs,sk_lsqr --json out.json

The data: 1M x 50 float64 in raw units (columns mixed so that they correlate, then scaled by
0.5-20 and shifted by +-10), one target with noise (R2 about 0.95), the same from a fixed
seed in every process. Each peer runs in its own process (the numpy peers without
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``, which make OpenBLAS pick slower kernels, as
``run.py`` does), fits as a user would on the raw data, and is scored by numpy on all rows:
the time to the first model whose R2 is within ``--target`` (1e-6) of lstsq's.

- torchlinreg ``LinearRegression(solver=s, tol=1e-6)`` for gd, sgd, adam, lbfgs: the fit
  stops itself at the target (it measures its gap from the Gram), one run.
- scikit-learn ``Ridge(alpha=0, solver=...)`` for lsqr, sag, saga and ``SGDRegressor``
  (no penalty): a peer has no measured gap, so it runs a ladder of ``tol`` (or ``max_iter``)
  from loose to tight; the time reported is that of the first rung that reaches the
  target (the rungs before it are listed, not added).
- a plain torch loop: standardize by hand, mini-batch SGD with momentum (lr 0.01, 0.9,
  batch 256), R2 on all rows after each epoch, stop at the target.

Every peer has ``--budget`` seconds (default 120); "not reached" gives the best gap seen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

MARKER = "@@RESULT@@"
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PEERS = {
    "tlr_gd": "torchlinreg gd (tol=1e-6)",
    "tlr_sgd": "torchlinreg sgd (tol=1e-6)",
    "tlr_adam": "torchlinreg adam (tol=1e-6)",
    "tlr_lbfgs": "torchlinreg lbfgs (tol=1e-6)",
    "sk_sgd": "scikit-learn SGDRegressor",
    "sk_sag": "scikit-learn Ridge(alpha=0, solver='sag')",
    "sk_saga": "scikit-learn Ridge(alpha=0, solver='saga')",
    "sk_lsqr": "scikit-learn Ridge(alpha=0, solver='lsqr')",
    "torch_loop": "plain torch loop (SGD momentum, standardized)",
}


def make_data(n: int, d: int):
    import numpy as np

    rng = np.random.default_rng(12345)
    X = rng.standard_normal((n, d))
    mix = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    X = X @ mix
    X *= rng.uniform(0.5, 20.0, d)
    X += rng.uniform(-10.0, 10.0, d)
    w = rng.standard_normal(d) / rng.uniform(0.5, 20.0, d)
    signal = X @ w
    y = signal + 1.0 + 0.22 * signal.std() * rng.standard_normal(n)
    return X, y


def exact_r2(X, y) -> float:
    import numpy as np

    Xc, yc = X - X.mean(0), y - y.mean()
    coef = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    return float(1 - ((yc - Xc @ coef) ** 2).sum() / (yc**2).sum())


def r2_of(pred, y) -> float:
    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


# ----------------------------------------------------------------------------- peers


def run_tlr(solver, X, y, target, budget):
    import torchlinreg as tlr

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = tlr.LinearRegression(solver=solver, tol=target, max_iter=100_000, random_state=0)
        model.fit(X, y)
    seconds = time.perf_counter() - started
    warned = [str(w.message)[:120] for w in caught if "ConvergenceWarning" in w.category.__name__]
    note = f"{model.n_iter_} epochs, reported gap {model.optimality_gap_:.2g}"
    return seconds, model.predict(X), note + ("; warned" if warned else "")


def run_ladder(make, rungs, X, y, want, target, budget, *, linear_cost=False):
    """Fit ``make(rung)`` for each rung until the R2 gap is within ``target``.

    With ``linear_cost`` (the rung is an epoch count) a rung whose time, scaled from the
    last one, would overrun the budget is not started.
    """
    spent, tried, best, last = 0.0, [], None, None
    for rung in rungs:
        if linear_cost and last is not None and last[1] * rung / last[0] > budget - spent:
            tried.append(f"{rung}: skipped (over the budget)")
            break
        est = make(rung)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        seconds = time.perf_counter() - started
        spent += seconds
        last = (rung, seconds)
        gap = want - r2_of(est.predict(X), y)
        best = gap if best is None else min(best, gap)
        tried.append(f"{rung}: {seconds:.1f} s, gap {gap:.1e}")
        if gap <= target:
            return seconds, est.predict(X), "; ".join(tried)
        if spent > budget:
            break
    return None, None, "; ".join(tried) + f" (best gap {best:.1e})"


def run_sklearn(name, X, y, want, target, budget):
    from sklearn.linear_model import Ridge, SGDRegressor

    if name == "sk_sgd":
        return run_ladder(
            lambda it: SGDRegressor(penalty=None, tol=None, max_iter=it, random_state=0),
            [5, 20, 100, 500],
            X, y, want, target, budget, linear_cost=True,
        )  # fmt: skip
    solver = name.removeprefix("sk_")
    return run_ladder(
        lambda tol: Ridge(alpha=0.0, solver=solver, tol=tol, max_iter=100_000, random_state=0),
        [1e-3, 1e-4, 1e-6, 1e-8, 1e-10],
        X, y, want, target, budget,
    )  # fmt: skip


def run_torch_loop(X, y, want, target, budget):
    import torch

    started = time.perf_counter()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    mx, sx, my, sy = Xt.mean(0), Xt.std(0), yt.mean(), yt.std()
    Xs, ys = (Xt - mx) / sx, (yt - my) / sy
    w = torch.zeros(X.shape[1], dtype=Xs.dtype, requires_grad=True)
    b = torch.zeros((), dtype=Xs.dtype, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    epochs, gap = 0, None
    while time.perf_counter() - started < budget:
        for idx in torch.randperm(len(ys), generator=g).split(256):
            loss = ((Xs[idx] @ w + b - ys[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
        with torch.no_grad():
            pred = ((Xs @ w + b) * sy + my).numpy()
        gap = want - r2_of(pred, y)
        if gap <= target:
            return time.perf_counter() - started, pred, f"{epochs} epochs"
    return None, None, f"{epochs} epochs (gap {gap:.1e})"


def worker(name: str, n: int, d: int, target: float, budget: float, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    X, y = make_data(n, d)
    want = exact_r2(X, y)
    if name.startswith("tlr_"):
        seconds, pred, note = run_tlr(name.removeprefix("tlr_"), X, y, target, budget)
    elif name == "torch_loop":
        seconds, pred, note = run_torch_loop(X, y, want, target, budget)
    else:
        seconds, pred, note = run_sklearn(name, X, y, want, target, budget)
    gap = None if pred is None else want - r2_of(pred, y)
    return {"seconds": seconds, "gap": gap, "note": note, "exact_r2": want}


# ----------------------------------------------------------------------------- driver


def run_peer(name: str, args, src: str) -> dict:
    env = dict(os.environ)
    if not name.startswith("tlr_"):
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, __file__, "--worker", name, "--n", str(args.n), "--d", str(args.d)]
    cmd += ["--target", str(args.target), "--budget", str(args.budget)]
    cmd += ["--threads", str(args.threads)]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=args.budget * 3 + 120
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0][:200]}"}
    return json.loads(line[len(MARKER) :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k x 10, budget 20 s")
    ap.add_argument("--only", help="comma-separated peers: " + ", ".join(PEERS))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--target", type=float, default=1e-6)
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        result = worker(args.worker, args.n, args.d, args.target, args.budget, args.threads)
        sys.stdout.write("\n" + MARKER + json.dumps(result) + "\n")
        return
    if args.quick:
        args.n, args.d, args.budget = 20_000, 10, 20.0
    names = args.only.split(",") if args.only else list(PEERS)
    src = str(Path(__file__).resolve().parents[1] / "src")
    print(f"## time to the exact R2 within {args.target:g}: n={args.n:,} d={args.d} raw float64")
    print(f"{'peer':<48} {'time':>9} {'gap':>9}  notes")
    results = {}
    for name in names:
        res = results[name] = run_peer(name, args, src)
        if "error" in res:
            print(f"{PEERS[name]:<48} ERROR {res['error']}")
            continue
        t = "not reached" if res["seconds"] is None else f"{res['seconds']:8.2f}s"
        g = "-" if res["gap"] is None else f"{res['gap']:9.1e}"
        print(f"{PEERS[name]:<48} {t:>9} {g:>9}  {res['note']}", flush=True)
    if args.json:
        meta = {"n": args.n, "d": args.d, "target": args.target, "threads": args.threads}
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
