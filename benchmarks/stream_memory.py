"""Streaming an exact fit from a Parquet file larger than it is wise to load: memory and time.

Generates an ``n x d`` float64 Parquet file (plus one target column) in a temp folder,
writing it one row group at a time so the generator never holds the whole file, then runs
each measurement in a fresh subprocess and reads that process's own peak RSS (``wait4``):

1. ``torchlinreg train FILE -t y`` (the CLI, default QR solver, and ``--solver gram``);
2. the reference for speed: pyarrow reading the same file block by block plus the Gram of
   each block (``A.T @ A``, the faster of numpy and torch), the floor a streaming exact fit
   cannot beat by much;
3. the reference for the answer: the whole file in memory (pyarrow -> one float64 matrix),
   solved by ``numpy.linalg.lstsq`` on ``[1 | X]``, and torchlinreg's in-memory ``fit``.

Usage::

    python benchmarks/stream_memory.py                   # 5M x 30, about 1.2 GB
    python benchmarks/stream_memory.py --rows 500000     # a quick run
    python benchmarks/stream_memory.py --threads 1       # on a busy machine, see below

On a 2-core machine shared with other work, torch's two OpenMP threads wait for each other
at every small operation (a descheduled thread costs a time slice), which can triple the time
of a blocked fit; ``--threads 1`` measures every process single-threaded instead.

Prints one line per measurement and the coefficient differences to the in-memory answer.

Measured on the project's 2-core machine, shared with other jobs (load average 3-5),
``--threads 1``, 5M x 30 (+1 target), 1241 MB, row groups of 131,072 rows:

======================================  =======  ==============  ============
                                        fit (s)  ratio to ref.   peak RSS
======================================  =======  ==============  ============
``train`` (qr, default)                 1.23     1.27 (1.22)     575 MB
``train --solver gram``                 1.00     1.04 (1.09)     567 MB
pyarrow read + Gram (reference)         0.97                     461 MB
imports alone                                                    328 MB
======================================  =======  ==============  ============

(ratios: fastest runs, and in brackets the median of the per-round ratios.) Streamed
coefficients vs ``numpy.linalg.lstsq`` on all rows in memory: 1.6e-14 (qr), 2.8e-12 (gram),
relative. With the libraries' default two threads on the loaded machine the same fits took
13-20 s: see the note on ``--threads`` above.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Set by --threads for every measured process (torch, numpy and pyarrow alike).
THREADS: dict[str, str] = {}

_READ_GRAM = r"""
import sys, time, json
import numpy as np, pyarrow.parquet as pq, torch
# The best of numpy (OpenBLAS) and torch (MKL) for the Gram; pre_buffer=False, as the
# default keeps every column chunk read until the end (memory grows with the file).
best = {}
for lib in ("numpy", "torch"):
    t0 = time.perf_counter()
    f = pq.ParquetFile(sys.argv[1], pre_buffer=False)
    cols = f.schema_arrow.names
    gram = None
    for batch in f.iter_batches(batch_size=65536):
        a = np.column_stack([batch.column(c).to_numpy() for c in cols])
        if lib == "torch":
            a = torch.from_numpy(a)
        g = a.T @ a
        gram = g if gram is None else gram + g
    best[lib] = time.perf_counter() - t0
print(json.dumps({"seconds": min(best.values()), **best}))
"""

_IN_MEMORY = r"""
import sys, time, json
import numpy as np, pyarrow.parquet as pq
t0 = time.perf_counter()
table = pq.read_table(sys.argv[1])
cols = [c for c in table.column_names if c != "y"]
n = table.num_rows
A = np.empty((n, len(cols) + 1))
A[:, 0] = 1.0
for j, c in enumerate(cols):
    A[:, j + 1] = table.column(c).to_numpy()
y = table.column("y").to_numpy()
del table
sol = np.linalg.lstsq(A, y, rcond=None)[0]
t1 = time.perf_counter()
from torchlinreg.estimator.linear import LinearRegression
m = LinearRegression().fit(A[:, 1:], y)
print(json.dumps({"seconds_lstsq": t1 - t0, "seconds_fit": time.perf_counter() - t1,
                  "lstsq": sol.tolist(),
                  "fit": [float(m.intercept_), *m.coef_.tolist()]}))
"""


def generate(path: str, rows: int, d: int, row_group: int, seed: int = 0) -> None:
    """Write ``x0..x{d-1}, y`` with ``y = X w + b + noise``, one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 20.0, d)
    means = rng.uniform(-50.0, 50.0, d)
    w = rng.normal(size=d)
    names = [f"x{j}" for j in range(d)] + ["y"]
    schema = pa.schema([(n, pa.float64()) for n in names])
    # Random floats do not compress and a dictionary only adds pages: plain, uncompressed.
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        for lo in range(0, rows, row_group):
            m = min(row_group, rows - lo)
            X = rng.standard_normal((m, d)) * scales + means
            y = X @ w + 3.0 + rng.standard_normal(m)
            arrays = [pa.array(X[:, j]) for j in range(d)] + [pa.array(y)]
            writer.write_table(pa.Table.from_arrays(arrays, names=names), row_group_size=m)


def run_measured(cmd: list[str]) -> tuple[dict, float, float]:
    """Run ``cmd``; return its JSON output, wall seconds and peak RSS (MB) of that process."""
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), **THREADS}
    t0 = time.perf_counter()
    proc = _Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {err.decode()[-2000:]}")
    return json.loads(out.decode()), wall, proc.peak_mb


class _Popen(subprocess.Popen):
    """A Popen that reaps its child with ``wait4`` and keeps the child's peak RSS."""

    peak_mb = float("nan")

    def _try_wait(self, wait_flags):
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid:
            self.peak_mb = usage.ru_maxrss / 1024.0  # Linux: kilobytes
        return pid, status


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--features", type=int, default=30)
    p.add_argument("--row-group", type=int, default=131_072)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP/MKL/OpenBLAS threads of the measured processes [default: the libraries']",
    )
    p.add_argument("--repeat", type=int, default=3, help="rounds of measurements")
    p.add_argument("--dir", default=None, help="folder for the file [default: a temp folder]")
    args = p.parse_args()
    if args.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            THREADS[var] = str(args.threads)
    py = sys.executable
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, "big.parquet")
        t0 = time.perf_counter()
        generate(path, args.rows, args.features, args.row_group)
        size = os.path.getsize(path) / 1e6
        print(
            f"generated {args.rows:,} x {args.features} (+1 target) float64: {size:.0f} MB "
            f"in {time.perf_counter() - t0:.1f} s; load average {loadavg()}"
        )
        train = [py, "-m", "torchlinreg", "train", path, "-t", "y", "--json", "-o"]
        cmds = {
            solver: [*train, os.path.join(tmp, f"{solver}.safetensors"), "--solver", solver]
            for solver in ("qr", "gram")
        }
        cmds["reference"] = [py, "-c", _READ_GRAM, path]
        # Rounds of (qr, gram, reference), so that a change in the machine's load between
        # rounds hits all three; the ratios are taken within each round.
        runs: dict[str, list] = {name: [] for name in cmds}
        for _ in range(args.repeat):
            for name, cmd in cmds.items():
                runs[name].append(run_measured(cmd))
        best = {name: min(r, key=lambda x: x[0]["seconds"]) for name, r in runs.items()}
        for solver in ("qr", "gram"):
            out, wall, _ = best[solver]
            peak = max(r[2] for r in runs[solver])
            print(
                f"torchlinreg train --solver {solver}: fit {out['seconds']:.2f} s, "
                f"process {wall:.2f} s, peak RSS {peak:.0f} MB"
            )
        ref, wall_ref, _ = best["reference"]
        peak_ref = max(r[2] for r in runs["reference"])
        print(
            f"pyarrow read + Gram (reference): numpy {ref['numpy']:.2f} s, "
            f"torch {ref['torch']:.2f} s, process {wall_ref:.2f} s, peak RSS {peak_ref:.0f} MB"
        )
        _, wall_imp, peak_imp = run_measured(
            [py, "-c", "import torchlinreg.cli.app, pyarrow.parquet; print('{}')"]
        )
        print(
            f"imports alone (torch, pyarrow, torchlinreg): {wall_imp:.2f} s, "
            f"peak RSS {peak_imp:.0f} MB"
        )
        for solver in ("qr", "gram"):
            paired = sorted(
                a[0]["seconds"] / b[0]["seconds"]
                for a, b in zip(runs[solver], runs["reference"], strict=True)
            )
            print(
                f"  ratio train --solver {solver} / reference: fastest "
                f"{best[solver][0]['seconds'] / ref['seconds']:.2f}, per round "
                + ", ".join(f"{r:.2f}" for r in paired)
            )
        mem, _, peak_mem = run_measured([py, "-c", _IN_MEMORY, path])
        print(
            f"in memory: numpy lstsq {mem['seconds_lstsq']:.2f} s, torchlinreg fit "
            f"{mem['seconds_fit']:.2f} s, peak RSS {peak_mem:.0f} MB"
        )
        lstsq = np.asarray(mem["lstsq"])
        for solver in ("qr", "gram"):
            from safetensors.numpy import load_file

            t = load_file(os.path.join(tmp, f"{solver}.safetensors"))
            got = np.concatenate([t["bias"].reshape(-1), t["weight"].reshape(-1)])
            for name, want in (("numpy lstsq", lstsq), ("in-memory fit", np.asarray(mem["fit"]))):
                rel = np.abs(got - want).max() / np.abs(want).max()
                print(f"  {solver} streamed vs {name}: max relative difference {rel:.1e}")
        print(f"threads: {args.threads or 'default'}; load average at the end {loadavg()}")


if __name__ == "__main__":
    main()
