"""LassoCV and RidgeCV: torchlinreg's one-pass fold states against scikit-learn's *CV.

Each peer runs in its own fresh process on the same seeded data (``n x d``, a sparse true
coefficient vector, noise): torchlinreg's ``LassoCV(cv=5)`` (rows dealt to 5 fold states in
one pass, every alpha solved from the states), the same streamed from a Parquet file with
``fit_blocks``, and scikit-learn's ``LassoCV(cv=5)`` (5 training copies, coordinate descent
on the rows, or on the Gram it precomputes); then ``RidgeCV`` both ways with cv=5. Both use
100 alphas by default and scikit-learn's tol (1e-4). Each peer is warmed up on 2,000 rows
first (imports, first calls), then timed (best of ``--repeat``). Folds differ (hashed vs
KFold), so the chosen alphas differ slightly; the held-out MSE at the chosen alpha is
printed for both.

Usage::

    python benchmarks/lasso_cv.py                      # 100,000 x 100
    python benchmarks/lasso_cv.py --rows 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

DATA = """
import json, sys, time, warnings
import numpy as np
n, d = {rows}, {features}
rng = np.random.default_rng(0)
X = rng.normal(size=(n, d)) * rng.uniform(0.5, 5, d) + rng.uniform(-10, 10, d)
coef = np.where(rng.uniform(size=d) < 0.2, rng.normal(size=d) * 3, 0.0)
y = X @ coef + 5 + rng.normal(size=n) * 4
"""

PEERS = {
    "torchlinreg LassoCV (memory)": """
import torchlinreg as tlr
def run():
    m = tlr.LassoCV(cv=5, alphas={alphas}).fit(X, y)
    return m.alpha_, float(m.mse_path_.mean(axis=1).min())
""",
    "torchlinreg LassoCV (Parquet, fit_blocks)": """
import pyarrow as pa, pyarrow.parquet as pq
import torchlinreg as tlr
path = {parquet!r}
cols = {{f"x{{j}}": X[:, j] for j in range(d)}}
pq.write_table(pa.table({{**cols, "y": y}}), path, row_group_size=65536)
names = [f"x{{j}}" for j in range(d)]
def run():
    src = tlr.open_table(path)
    m = tlr.LassoCV(cv=5, alphas={alphas}).fit_blocks(src.read_columns(names, ["y"], None))
    return m.alpha_, float(m.mse_path_.mean(axis=1).min())
""",
    "scikit-learn LassoCV": """
from sklearn.linear_model import LassoCV
def run():
    m = LassoCV(cv=5, alphas={alphas}).fit(X, y)
    return m.alpha_, float(m.mse_path_.mean(axis=1).min())
""",
    "torchlinreg RidgeCV": """
import torchlinreg as tlr
def run():
    m = tlr.RidgeCV(alphas=np.logspace(-3, 3, 13), cv=5).fit(X, y)
    return m.alpha_, float(m.mse_path_.mean(axis=1).min())
""",
    "scikit-learn RidgeCV": """
from sklearn.linear_model import RidgeCV
def run():
    m = RidgeCV(alphas=np.logspace(-3, 3, 13), cv=5, scoring="neg_mean_squared_error").fit(X, y)
    return m.alpha_, -float(m.best_score_)
""",
}

TIME = """
warnings.simplefilter("ignore")
X_all, y_all = X, y
X, y = X[:2000], y[:2000]
run()  # warm-up: imports (torchlinreg loads torch on first use) and first-call costs
X, y = X_all, y_all
times = []
for _ in range({repeat}):
    t = time.perf_counter(); alpha, mse = run(); times.append(time.perf_counter() - t)
print(json.dumps({{"seconds": min(times), "alpha": float(alpha), "mse": mse}}))
"""


def run_peer(name: str, args: argparse.Namespace, parquet: str) -> dict:
    fmt = {"rows": args.rows, "features": args.features, "alphas": args.alphas,
           "repeat": args.repeat, "parquet": parquet}  # fmt: skip
    code = DATA.format(**fmt) + PEERS[name].format(**fmt) + TIME.format(**fmt)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--features", type=int, default=100)
    p.add_argument("--alphas", type=int, default=100)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--peers", default=";".join(PEERS), help="semicolon-separated subset")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.peers.split(";"):
            results[name] = run_peer(name, args, str(Path(tmp, "data.parquet")))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.rows:,} x {args.features}, cv=5, {args.alphas} alphas (RidgeCV: 13)")
    print(f"{'peer':44} {'seconds':>9} {'alpha_':>11} {'cv mse':>10}")
    for name, r in results.items():
        print(f"{name:44} {r['seconds']:9.2f} {r['alpha']:11.4g} {r['mse']:10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
