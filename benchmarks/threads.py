"""Threads on shared cores: a fit beside a CPU-bound process, against the same fit on one thread.

NOTE [threads on shared cores] (``exact/threads.py``) is the policy measured here. Each
measurement runs in a fresh process, in two conditions: the machine as it is, and with a
CPU hog (a busy Python loop in another process) started before the fit. Per condition:
the default (the policy decides), ``TORCHLINREG_THREADS=<all cores>`` (what torch would do
without the policy), and ``TORCHLINREG_THREADS=1`` (pinned). The targets: beside a hog
the default takes at most 1.5x the pinned fit; on an idle machine it is at least as fast.

Usage::

    python benchmarks/threads.py                 # 200,000 x 100 x 3, qr and gram, sgd
    python benchmarks/threads.py --rows 50000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

FIT = """
import json, sys, time
import numpy as np
import torchlinreg as tlr
n, d, k, solver = {rows}, {features}, {targets}, {solver!r}
rng = np.random.default_rng(0)
X = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-10, 10, d)
Y = X @ rng.normal(size=(d, k)) + rng.normal(size=(n, k))
kw = dict(max_iter=3, tol=None, random_state=0) if solver in ("sgd", "adam") else {{}}
tlr.LinearRegression(solver=solver, **kw).fit(X[:2000], Y[:2000])  # warm up
times = []
for _ in range({repeat}):
    t = time.perf_counter()
    tlr.LinearRegression(solver=solver, **kw).fit(X, Y)
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""

HOG = "while True:\n    pass\n"


def _run(code: str, threads: str) -> list[float]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_NUM_THREADS", None)
    if threads != "default":
        env["TORCHLINREG_THREADS"] = threads
    else:
        env.pop("TORCHLINREG_THREADS", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(args, solver: str, hog: bool) -> dict[str, float]:
    code = FIT.format(rows=args.rows, features=args.features, targets=args.targets,
                      solver=solver, repeat=args.repeat)  # fmt: skip
    cores = str(len(os.sched_getaffinity(0)))
    hog_proc = subprocess.Popen([sys.executable, "-c", HOG]) if hog else None
    try:
        if hog_proc:
            time.sleep(0.5)
        return {
            name: statistics.median(_run(code, threads))
            for name, threads in (("default", "default"), ("all cores", cores), ("one", "1"))
        }
    finally:
        if hog_proc:
            hog_proc.kill()
            hog_proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--solvers", default="qr,gram,sgd")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(f"{args.rows} x {args.features} x {args.targets}; load before: {os.getloadavg()}")
    print("solver  condition  default   all cores  one thread  default/one")
    results = {}
    for solver in args.solvers.split(","):
        for hog in (False, True):
            r = measure(args, solver, hog)
            results[f"{solver}{' beside a hog' if hog else ''}"] = r
            print(
                f"{solver:6s}  {'hog' if hog else 'as is':9s}  {r['default']:7.3f}   "
                f"{r['all cores']:9.3f}  {r['one']:10.3f}  {r['default'] / r['one']:11.2f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
