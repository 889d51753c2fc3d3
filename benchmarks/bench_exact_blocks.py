"""Time the exact engine against bare torch / scikit-learn, and tune ``block_rows``.

Not a test. Run: PYTHONPATH=src python benchmarks/bench_exact_blocks.py [n] [d] [k] [--sklearn]
Quote ratios from one run: absolute times on shared 2-core machines vary by +-25%, and far
more when other processes compete for the cores (OpenMP barriers then stall small blocks).

Measured 2026-11 on the project machine (2 cores, AVX-512, MKL), 1M x 100, 3 targets, float64,
one thread, CPU time (the machine was shared, so wall times were meaningless), best of 3,
ranges over three runs:
  floor X.T @ X 1.00x | gram 1.21-1.46x | qr 1.87-2.1x | torch lstsq gelsd 5.1-9.3x |
  scikit-learn LinearRegression 14.6-15.3x.
Sample weights add ~7%; float32 input (converted per block) costs no more than float64.
block_rows 2048-8192 are within noise of each other for both methods (4096 chosen); 16384 and
up fall out of cache (qr +10-25%, gram +15-60%).
"""

from __future__ import annotations

import sys
import time
from functools import partial

import torch

from torchlinreg.exact.state import LeastSquaresState


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n, d, k = (int(a) for a in (args + ["1000000", "100", "3"][len(args) :]))
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    X = X * torch.rand(d, generator=g, dtype=torch.float64) * 20 + 5
    Y = X[:, :k] * 2 + torch.randn(n, k, generator=g, dtype=torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64)
    print(f"n={n} d={d} k={k} threads={torch.get_num_threads()}")
    floor = best_of(lambda: X.T @ X)
    print(f"floor X.T @ X          {floor:8.3f} s   1.00x")

    def report(name, seconds):
        print(f"{name:22s} {seconds:8.3f} s  {seconds / floor:5.2f}x floor")

    def fit(method, rows=None, X=X, Y=Y, w=None):
        return LeastSquaresState(d, k, method=method, block_rows=rows).absorb(X, Y, w).solve()

    A = torch.cat([torch.ones(n, 1, dtype=torch.float64), X], 1)
    report("torch lstsq gelsd", best_of(partial(torch.linalg.lstsq, A, Y, driver="gelsd"), 1))
    del A
    for rows in (2048, 4096, 8192, 16384):
        for method in ("qr", "gram"):
            report(f"{method} rows={rows}", best_of(partial(fit, method, rows)))
    X32, Y32 = X.float(), Y.float()
    for method in ("qr", "gram"):
        report(f"{method} weighted", best_of(partial(fit, method, w=w)))
        report(f"{method} float32 input", best_of(partial(fit, method, X=X32, Y=Y32)))
    if "--sklearn" in sys.argv:
        from sklearn.linear_model import LinearRegression

        Xn, Yn = X.numpy(), Y.numpy()
        report("sklearn LinearRegr.", best_of(lambda: LinearRegression().fit(Xn, Yn), 1))


if __name__ == "__main__":
    main()
