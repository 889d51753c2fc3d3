"""Worker of tests/test_robust_blocks.py: one rank of a 2-process gloo group.

Each rank holds every other row of Grunfeld (so each firm's rows are on both ranks), fits
with ``fit_blocks`` (the state merges across ranks), runs the second pass over its own
rows and merges the per-cluster sums (``distributed.clusters``); it writes the clustered
standard errors to ``OUT/rank{r}.npz``. Run as ``python _dist_cluster_worker.py STORE RANK
WORLD OUT``.
"""

from __future__ import annotations

import sys

import numpy as np
import statsmodels.api as sm
import torch.distributed as dist

from torchlinreg import LinearRegression
from torchlinreg.distributed.clusters import merge_cluster_sums
from torchlinreg.stats.robust_blocks import add_blocks, check_rows


def main() -> None:
    store_file, rank, world, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    dist.init_process_group("gloo", store=dist.FileStore(store_file, world), rank=rank,
                            world_size=world)  # fmt: skip
    data = sm.datasets.grunfeld.load_pandas()
    exog = data.exog[:200]
    X = np.asarray(exog[["value", "capital"]], dtype=float)
    y = np.asarray(data.endog[:200], dtype=float)
    firm = np.unique(np.asarray(exog["firm"]), return_inverse=True)[1].reshape(-1)
    year = np.asarray(exog["year"], dtype=float)
    rows = np.arange(rank, 200, world)
    blocks = [(X[rows[i : i + 17]], y[rows[i : i + 17]]) for i in range(0, len(rows), 17)]
    res = LinearRegression().fit_blocks(blocks).results_
    out_arrays = {}
    for name, labels in (("one", firm), ("two", np.c_[firm, year])):
        groups = [labels[rows[i : i + 17]] for i in range(0, len(rows), 17)]
        acc = merge_cluster_sums(add_blocks(res, blocks, groups), n_targets=1, n_params=3)
        check_rows(res, acc)
        out_arrays[name] = res.with_cluster_sums(acc, use_t=True).bse
    np.savez(f"{out}/rank{rank}.npz", **out_arrays)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
