"""Exact fits on 1 process vs N gloo processes (loopback), same rows, as wall-time ratios.

Each rank makes only its own rows (seeded per 64k-row chunk, so the union is the same
matrix whatever N) and fits them with ``LinearRegression(solver=...)``; the time is the
slowest rank's, from a barrier to the fitted model (the merge across ranks included).

    python benchmarks/bench_distributed.py --rows 2000000 --features 20 --procs 2

On a machine with fewer free cores than processes the ratio says little about scaling:
say how many cores the run had.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CHUNK = 1 << 16


def make_rows(lo: int, hi: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    W = np.random.default_rng(12345).normal(size=(k, d))
    Xs, Ys = [], []
    for c in range(lo // CHUNK, (hi - 1) // CHUNK + 1):
        rng = np.random.default_rng(c)
        X = rng.normal(size=(CHUNK, d)) * 3 + 10
        Y = X @ W.T + rng.normal(size=(CHUNK, k))
        a, b = max(lo, c * CHUNK) - c * CHUNK, min(hi, (c + 1) * CHUNK) - c * CHUNK
        Xs.append(X[a:b])
        Ys.append(Y[a:b])
    return np.concatenate(Xs), np.concatenate(Ys)


def rank_main(args) -> None:
    import torch
    import torch.distributed as dist

    from torchlinreg import LinearRegression

    torch.set_num_threads(args.threads)
    rank, world = args.rank, args.procs
    if world > 1:
        store = dist.FileStore(args.store, world)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    lo, hi = rank * args.rows // world, (rank + 1) * args.rows // world
    X, Y = make_rows(lo, hi, args.features, args.targets)
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    for solver in ("qr", "gram"):
        best = float("inf")
        for _ in range(args.repeat):
            if world > 1:
                dist.barrier()
            t0 = time.perf_counter()
            LinearRegression(solver=solver).fit(X, Y)
            t = torch.tensor([time.perf_counter() - t0])
            if world > 1:
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
            best = min(best, float(t))
        if rank == 0:
            print(f"{solver} {world} {best:.4f}", flush=True)
    if world > 1:
        dist.destroy_process_group()


def launch(args, procs: int) -> dict[str, float]:
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--rank-of", str(procs), "--store", f"{tmp}/store"]
        cmd += ["--rows", str(args.rows), "--features", str(args.features)]
        cmd += ["--targets", str(args.targets), "--repeat", str(args.repeat)]
        cmd += ["--threads", str(args.threads)]
        ps = [
            subprocess.Popen([*cmd, "--rank", str(r)], env=env, stdout=subprocess.PIPE, text=True)
            for r in range(procs)
        ]
        outs = [p.communicate()[0] for p in ps]
    times = {}
    for line in outs[0].splitlines():
        solver, _, t = line.split()
        times[solver] = float(t)
    return times


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--targets", type=int, default=1)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--rank", type=int, default=None)
    p.add_argument("--rank-of", dest="rank_of", type=int, default=None)
    p.add_argument("--store", default=None)
    args = p.parse_args()
    if args.rank is not None:
        args.procs = args.rank_of
        rank_main(args)
        return
    one = launch(args, 1)
    many = launch(args, args.procs)
    print(f"{args.rows} x {args.features}, {args.targets} target(s), {args.threads} thread(s)/proc")
    for solver in one:
        print(
            f"{solver:5s} 1 proc {one[solver]:.3f} s   {args.procs} procs {many[solver]:.3f} s"
            f"   speed-up {one[solver] / many[solver]:.2f}x"
        )


if __name__ == "__main__":
    main()
