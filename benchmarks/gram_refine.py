"""Two ratios of issue 11 measured side by side: ``solver="gram"`` against the bare Gram, and
a forced refinement against the fit it refines.

- gram: ``LinearRegression(solver="gram").fit(X, Y)`` (3 targets) against torch's bare
  ``X.T @ X`` and numpy's (OpenBLAS's syrk path), alternated in one process, median of
  ``--repeat``; the goal is at most 1.1x the faster bare product.
- refinement: the default fit, then ``OLSResults.from_fit(..., refine=True)`` minus the same
  with ``refine=False`` (the statistics both build); the goal is fit + refinement at most
  1.5x the fit.

Each size runs in a fresh process, with torch's threads as given (``--threads``, default:
one and two); each peer's runs go together (OpenBLAS threads spin on after numpy's product
and would be counted against the next peer), wall seconds, median. numpy runs with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset (they slow it on this machine). The
fits run under the library's thread policy, so on a busy machine they take fewer threads
than the bare products are given.

Usage::

    python benchmarks/gram_refine.py                     # 1M x 50/100, 200k x 500; 1e5 x 100
    python benchmarks/gram_refine.py --repeat 7 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

CODE = """
import json, statistics, time
import numpy as np, torch
torch.set_num_threads({threads})
import torchlinreg as tlr
from torchlinreg.stats.results import OLSResults
from torchlinreg.exact.threads import with_fit_threads
n, d, k, what = {rows}, {features}, {targets}, {what!r}
rng = np.random.default_rng(0)
Xn = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-10, 10, d)
Yn = Xn @ rng.normal(size=(d, k)) + rng.normal(size=(n, k))
X, Y = torch.from_numpy(Xn), torch.from_numpy(Yn)
clock = time.perf_counter
if what == "gram":
    runs = {{
        "gram": lambda: tlr.LinearRegression(solver="gram").fit(X, Y),
        "torch X'X": lambda: X.T @ X,
        "numpy X'X": lambda: Xn.T @ Xn,
    }}
else:
    model = tlr.LinearRegression().fit(X, Y)
    # under the library's thread policy, as inside a fit (exact/threads.py)
    stats = with_fit_threads(lambda refine: OLSResults.from_fit(
        X, Y, None, True, model.state_, model.solution_, refine=refine
    ))
    runs = {{
        "fit": lambda: tlr.LinearRegression().fit(X, Y),
        "statistics refined": lambda: stats(True),
        "statistics": lambda: stats(False),
    }}
times = {{name: [] for name in runs}}
for name, f in runs.items():  # one peer's runs together: OpenBLAS threads spin after numpy
    f()
    for _ in range({repeat}):
        t0 = clock(); f(); times[name].append(clock() - t0)
print(json.dumps({{name: statistics.median(v) for name, v in times.items()}}))
"""

CASES = [  # (what, rows, features, targets)
    ("gram", 1_000_000, 100, 3),
    ("gram", 1_000_000, 50, 3),
    ("gram", 200_000, 500, 3),
    ("refine", 100_000, 100, 1),
    ("refine", 100_000, 100, 10),
    ("refine", 20_000, 100, 100),
]


def run(what: str, rows: int, features: int, targets: int, threads: int, repeat: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OPENBLAS_NUM_THREADS"] = str(threads)  # numpy gets the threads torch gets
    code = CODE.format(
        what=what, rows=rows, features=features, targets=targets, threads=threads, repeat=repeat
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, action="append")
    ap.add_argument("--only", choices=["gram", "refine"], help="one of the two comparisons")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for threads in args.threads or [1, 2]:
        for what, n, d, k in CASES:
            if args.only and what != args.only:
                continue
            t = run(what, n, d, k, threads, args.repeat)
            if what == "gram":
                bare = min(t["torch X'X"], t["numpy X'X"])
                ratio = f"gram / bare = {t['gram'] / bare:.2f}"
            else:
                extra = t["statistics refined"] - t["statistics"]
                ratio = f"(fit + refinement) / fit = {(t['fit'] + extra) / t['fit']:.2f}"
            cells = ", ".join(f"{name} {v:.3f} s" for name, v in t.items())
            print(f"{threads} thread(s) {what} {n} x {d} x {k}: {cells}; {ratio}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
