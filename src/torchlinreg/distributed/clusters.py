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
        # each cluster's leverages (NOTE [blocks at the least-squares residuals]), zeros
        # where a rank kept none (``levered`` says which)
        lev = acc.leverage[j][: len(keys)] if acc.labels and acc.leverage else None
        lev = torch.zeros(len(keys)) if lev is None else lev.to(torch.float64).cpu()
        got_lev = _padded_allgather(lev, len(keys), longest)
        for r, part in enumerate(parts):
            size = int(all_sizes[r, j])
            if not part.labels:
                part.labels = [{} for _ in range(n_sets)]
                part.sums = [torch.zeros(n_targets, 0, n_params) for _ in range(n_sets)]
            values = got_labels[r][:size].tolist()
            key = (lambda v: int(v)) if j == 2 else (lambda v: v)
            part.labels[j] = {key(v): i for i, v in enumerate(values)}
            part.sums[j] = got_sums[r][:size].transpose(0, 1).contiguous()
            if part.leverage is None:
                part.leverage = [torch.zeros(0) for _ in range(n_sets)]
            part.leverage[j] = got_lev[r][:size].clone()
    counts = allgather(torch.tensor([acc.nobs], dtype=torch.int64))
    levered = allgather(torch.tensor([int(acc.leverage is not None or not acc.nobs)]))
    for r, part in enumerate(parts):
        if not bool(levered[r]):
            part.leverage = None
    shift = _carry_offsets(acc, parts, counts, n_targets=n_targets, n_params=n_params)
    for r, part in enumerate(parts):
        part.nobs = int(counts[r])
        if part.labels and any(len(t) for t in part.labels):
            merged.merge(part)  # sizes: the largest, sums of squares: added (ClusterSums.merge)
        else:
            merged.nobs += part.nobs
    merged.shift = shift
    return merged


# NOTE [merged cluster sums keep their offsets]
# Each rank's add_blocks takes its rows about the fit's offsets and records them (shift), and
# without an intercept keeps the sizes NOTE [blocks without an intercept] bounds the pass with
# (size: max_i |a_i| . |b| per target; sum_squares: the residuals' squares). The merge built
# fresh ClusterSums and dropped all three: cluster_from_sums then could not refuse sums of
# another fit's offsets, and without an intercept warned that the error was unbounded where
# the ranks had the numbers to bound it. The bound reads the largest row (a max over ranks)
# and the rms residual over all rows (squares and counts added), so the merge takes those.
# Offsets are checked, not merged: sums about different offsets cannot be added (another
# fit's, or a rank that took the raw rows), and every rank sees every rank's offsets, so all
# raise the same error rather than some waiting in a collective.


def _carry_offsets(
    acc: ClusterSums, parts: list[ClusterSums], counts, *, n_targets: int, n_params: int
) -> torch.Tensor | None:
    """Give each rank's part its offsets and sizes, and return the offsets every rank with
    rows took (DataError where they differ: NOTE [merged cluster sums keep their offsets])."""
    shift, size, ss = acc.shift, acc.size, acc.sum_squares
    width = 0 if shift is None else int(shift.numel())
    if width > n_params:
        raise DataError(f"the cluster sums' offsets have {width} columns; the fit has {n_params}")
    flags = torch.tensor([shift is not None, width, size is not None], dtype=torch.int64)
    values = torch.zeros(n_params, dtype=torch.float64)
    if shift is not None:
        values[:width] = shift.detach().reshape(-1).to("cpu", torch.float64)
    sizes = torch.zeros(2, n_targets, dtype=torch.float64)
    if size is not None:
        sizes[0] = size.detach().reshape(-1).to("cpu", torch.float64)
        sizes[1] = ss.detach().reshape(-1).to("cpu", torch.float64)
    got_flags, got_values, got_sizes = allgather(flags), allgather(values), allgather(sizes)
    agreed, first = None, None
    for r, part in enumerate(parts):
        has, w, sized = (int(v) for v in got_flags[r])
        if sized:
            part.size, part.sum_squares = got_sizes[r][0].clone(), got_sizes[r][1].clone()
        part.shift = got_values[r][:w].clone() if has else None
        if not int(counts[r]):  # a rank without rows adds nothing, about any offsets
            continue
        if first is None:
            agreed, first = part.shift, r
            continue
        _check_same(first, agreed, r, part.shift)
    return agreed


def _check_same(first: int, a: torch.Tensor | None, r: int, b: torch.Tensor | None) -> None:
    if a is None and b is None:
        return
    if a is None or b is None:
        raw, about = (first, r) if a is None else (r, first)
        raise DataError(
            f"cluster sums across ranks: rank {raw} took the raw rows and rank {about} the "
            "rows about the fit's offsets; every rank's second pass must be of the same fit"
        )
    if a.shape != b.shape:
        raise DataError(
            f"cluster sums across ranks: rank {first} took its rows about {a.numel()} "
            f"offsets and rank {r} about {b.numel()}; every rank's pass must be of the same fit"
        )
    differ = (a != b).nonzero().reshape(-1)
    if differ.numel():
        j = int(differ[0])
        raise DataError(
            "cluster sums across ranks were taken about different offsets: the design's "
            f"column {j + 1} at {float(a[j])!r} on rank {first} and {float(b[j])!r} on rank "
            f"{r} (another fit's); every rank's second pass must take the same fit's offsets"
        )
