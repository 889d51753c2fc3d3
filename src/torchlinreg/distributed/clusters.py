"""Per-cluster score sums of every rank, merged: clustered errors of a distributed fit.

Each rank runs the second pass over its own share (``stats.robust_blocks.add_blocks``); a
cluster's rows may be on several ranks. The ranks exchange their labels and sums as
tensors (numeric labels only: no pickle between processes) and every rank merges them in
rank order, so all ranks hold the same bits. Outside a process group it is the identity.

Example:
    >>> from torchlinreg.stats.robust_blocks import ClusterSums
    >>> acc = ClusterSums()
    >>> merge_cluster_sums(acc, n_targets=1, n_params=2) is acc
    True
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..stats.robust_blocks import ClusterSums
from .collectives import allgather, is_distributed


def _padded_allgather(t: torch.Tensor, size: int, longest: int) -> list[torch.Tensor]:
    """Every rank's ``t`` (first dim ``size`` here, at most ``longest``), trimmed back."""
    pad = t.new_zeros((longest - size, *t.shape[1:]))
    return list(allgather(torch.cat([t, pad])))


def merge_cluster_sums(acc: ClusterSums, *, n_targets: int, n_params: int) -> ClusterSums:
    """The sums of every rank's rows, the same on every rank (a collective)."""
    if not is_distributed():
        return acc
    n_sets = torch.tensor([len(acc.labels)], dtype=torch.int64)
    n_sets = int(max(int(v) for v in allgather(n_sets)))
    sizes = torch.tensor([len(acc.labels[j]) if acc.labels else 0 for j in range(n_sets)])
    all_sizes = torch.stack(allgather(sizes))  # (ranks, n_sets)
    merged = ClusterSums()
    parts: list[ClusterSums] = [ClusterSums() for _ in range(all_sizes.shape[0])]
    for j in range(n_sets):
        mine = acc.labels[j] if acc.labels else {}
        keys = list(mine)
        try:
            labels = torch.tensor(np.asarray(keys, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError):
            raise DataError(
                "clustered errors across ranks need numeric cluster labels; recode them as "
                "numbers (e.g. integer ids)"
            ) from None
        # codes were given in first-seen order, so keys[i] has code i (and the intersections'
        # keys, built from these codes, stay valid on the other ranks)
        sums = acc.sums[j][:, : len(keys)] if acc.labels else torch.zeros(n_targets, 0, n_params)
        longest = int(all_sizes[:, j].max())
        got_labels = _padded_allgather(labels.to(torch.float64), len(keys), longest)
        got_sums = _padded_allgather(
            sums.transpose(0, 1).contiguous().to(torch.float64).cpu(), len(keys), longest
        )
        for r, part in enumerate(parts):
            size = int(all_sizes[r, j])
            if not part.labels:
                part.labels = [{} for _ in range(n_sets)]
                part.sums = [torch.zeros(n_targets, 0, n_params) for _ in range(n_sets)]
            values = got_labels[r][:size].tolist()
            key = (lambda v: int(v)) if j == 2 else (lambda v: v)
            part.labels[j] = {key(v): i for i, v in enumerate(values)}
            part.sums[j] = got_sums[r][:size].transpose(0, 1).contiguous()
    counts = allgather(torch.tensor([acc.nobs], dtype=torch.int64))
    for r, part in enumerate(parts):
        part.nobs = int(counts[r])
        if part.labels and any(len(t) for t in part.labels):
            merged.merge(part)
        else:
            merged.nobs += part.nobs
    return merged
